//! `custos serve --demo`, the real binary: see `tests/browser/demo.mjs`
//! for what the browser asserts (it also takes the screenshots of the main
//! pages).

use crate::harness::{run_node, serve_demo};
use crate::support::Scratch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and playwright-core (scripts/ensure-browser); scripts/test runs it"]
async fn the_demo_serves_every_page_with_demo_data() {
    let scratch = Scratch::new("browser-demo");
    let (server, url, secret) = serve_demo(&scratch.0);
    run_node("demo.mjs", &[("CUSTOS_URL", &url), ("TOTP_SECRET", &secret)]).await;
    drop(server);
    assert!(scratch.0.join("demo/DEMO-DATA.txt").exists(), "the folder says it holds demo data");

    // A folder of real data is never turned into a demo.
    let real = scratch.0.join("real");
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
        .env_clear()
        .env("CUSTOS_ROOT_KEY_FILE", scratch.0.join("real.key"))
        .args(["migrate", "--data-dir"])
        .arg(&real)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
        .env_clear()
        .env("CUSTOS_ROOT_KEY_FILE", scratch.0.join("real.key"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&real)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--demo serves demo data only"));
}
