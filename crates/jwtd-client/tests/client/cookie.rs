//! The server's cookie mode (REFRESH_COOKIE=true): the refresh token comes as an HttpOnly
//! cookie instead of in the JSON body, and the client's cookie store carries it.

use jwtd::config::RotationPolicy;
use jwtd_client::{MemoryStore, Method, StatusCode, TokenStore};

use crate::helpers::{TestServer, PASSWORD};

#[tokio::test]
async fn in_cookie_mode_the_session_survives_rotation_and_signs_out() {
    let app = TestServer::spawn_with(|s| {
        s.refresh_cookie = true;
        s.rotation = RotationPolicy::on();
    })
    .await;
    let store = MemoryStore::new();
    let client = app.client().store(store.clone()).build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    assert_eq!(store.load().unwrap().unwrap().refresh, None, "the refresh token is in the cookie only");

    for _ in 0..5 {
        app.expire_access();
        let response = client.request(Method::GET, "/api/me/").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(app.count("/api/token/refresh/", 200), 5);

    client.sign_out().await.unwrap();
    assert_eq!(app.count("/api/token/blacklist/", 200), 1);
}
