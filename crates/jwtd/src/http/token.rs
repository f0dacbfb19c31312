//! The SimpleJWT token views: obtain pair, refresh, verify, blacklist, sliding.

use axum::extract::State;
use axum::Json;
use jwtd_proto::{TokenBody, TokenPair};
use serde_json::{json, Value};

use super::{ApiError, ClientAddr, Input};
use crate::service::AuthService;

fn credentials(mut input: Input) -> Result<(String, String), ApiError> {
    let username = input.string("username");
    let password = input.string("password");
    input.finish(username.zip(password))
}

fn one(mut input: Input, name: &str) -> Result<String, ApiError> {
    let value = input.string(name);
    input.finish(value)
}

pub async fn obtain_pair(
    State(auth): State<AuthService>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<Json<TokenPair>, ApiError> {
    let (username, password) = credentials(input)?;
    let issued = auth.obtain_pair(&username, password, addr).await?;
    Ok(Json(TokenPair { refresh: issued.refresh, access: issued.access }))
}

pub async fn refresh(State(auth): State<AuthService>, input: Input) -> Result<Json<TokenPair>, ApiError> {
    let token = one(input, "refresh")?;
    let issued = auth.refresh(&token).await?;
    Ok(Json(TokenPair { refresh: issued.refresh, access: issued.access }))
}

pub async fn verify(State(auth): State<AuthService>, input: Input) -> Result<Json<Value>, ApiError> {
    let token = one(input, "token")?;
    auth.verify(&token).await?;
    Ok(Json(json!({})))
}

pub async fn blacklist(State(auth): State<AuthService>, input: Input) -> Result<Json<Value>, ApiError> {
    let token = one(input, "refresh")?;
    auth.blacklist(&token).await?;
    Ok(Json(json!({})))
}

pub async fn obtain_sliding(
    State(auth): State<AuthService>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<Json<TokenBody>, ApiError> {
    let (username, password) = credentials(input)?;
    let token = auth.obtain_sliding(&username, password, addr).await?;
    Ok(Json(TokenBody { token }))
}

pub async fn refresh_sliding(State(auth): State<AuthService>, input: Input) -> Result<Json<TokenBody>, ApiError> {
    let token = one(input, "token")?;
    Ok(Json(TokenBody { token: auth.refresh_sliding(&token).await? }))
}
