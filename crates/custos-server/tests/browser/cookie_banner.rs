//! The cookie banner on the demo page (`/demo/cookies`): see
//! `tests/browser/cookie-banner.mjs` for what it asserts.

use crate::harness::{instance, run_node, serve};

const EXAMPLE_EU: &str = include_str!("../../../../policies/example-eu.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and playwright-core (scripts/ensure-browser); scripts/test runs it"]
async fn the_banner_blocks_non_essential_scripts_until_consent_and_honours_gpc() {
    // b.stage: one category to choose (personalisation), no GPC rule;
    // example-eu: analytics, and marketing which GPC turns off.
    let bstage = instance("browser-cookies", custos_server::config::BUNDLED_POLICY, None).await;
    let eu = instance("browser-cookies-eu", EXAMPLE_EU, None).await;
    let (bstage_served, eu_served) = (serve(bstage.router.clone()).await, serve(eu.router.clone()).await);
    run_node("cookie-banner.mjs", &[("CUSTOS_URL", &bstage_served.url), ("CUSTOS_EU_URL", &eu_served.url)]).await;
    // What the browser chose is what the server recorded.
    let rows = |app: &crate::support::TestApp| -> Vec<(String, bool, bool)> {
        let db = rusqlite::Connection::open_with_flags(
            app.dir.0.join("data/custos.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut statement = db.prepare("SELECT category, granted, gpc FROM cookie_consents ORDER BY seq").unwrap();
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    };
    let bstage_rows = rows(&bstage);
    assert!(bstage_rows.contains(&("personalisation".into(), true, false)), "{bstage_rows:?}");
    assert!(bstage_rows.contains(&("personalisation".into(), false, false)), "{bstage_rows:?}");
    let eu_rows = rows(&eu);
    assert!(eu_rows.iter().all(|(c, granted, _)| c != "marketing" || !granted), "marketing never granted: {eu_rows:?}");
    assert!(eu_rows.contains(&("analytics".into(), true, true)), "{eu_rows:?}");
}
