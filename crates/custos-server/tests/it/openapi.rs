//! The committed `openapi.json` is exactly what the server serves.

use expect_test::expect_file;

use crate::support::TestApp;

#[tokio::test]
async fn committed_openapi_document_matches_the_served_one() {
    let app = TestApp::new("openapi").await;
    let (status, _, content_type) = app.send_full("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let served = custos_server::http::openapi::document();
    expect_file!["../../../../openapi.json"].assert_eq(&served);
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in
        ["/v1/subjects", "/v1/subjects/{id}", "/v1/lookup", "/v1/services", "/v1/subjects/{id}/records", "/health"]
    {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
}
