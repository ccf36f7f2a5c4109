//! API tokens. Only the sha256 of a token is stored: a leaked database leaks no credentials.

use kiln_api::ApiError;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Result, Store};

/// Who a presented token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub admin: bool,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random secret: `kiln_` and 64 hex digits (256 bits from the OS generator).
pub fn new_secret() -> String {
    format!("kiln_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Store {
    /// Stores a new token under `name` and returns its secret (the only time it is seen).
    pub async fn create_token(&self, name: &str, admin: bool) -> Result<String> {
        kiln_api::limits::name("name", name)?;
        let secret = new_secret();
        let mut w = self.write().await?;
        if sqlx::query("SELECT name FROM tokens WHERE name = $1").bind(name).fetch_optional(&mut *w.tx).await?.is_some() {
            return Err(ApiError::already_exists("token", name).into());
        }
        sqlx::query("INSERT INTO tokens (hash, name, admin, created_at) VALUES ($1, $2, $3, $4)")
            .bind(hash_token(&secret))
            .bind(name)
            .bind(i64::from(admin))
            .bind(super::now_millis())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(secret)
    }

    /// Replaces the token named `name` with a new one and returns its secret: for the
    /// server's own use (the scheduler's workflows), made anew at every start.
    pub async fn rotate_token(&self, name: &str, admin: bool) -> Result<String> {
        let secret = new_secret();
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM tokens WHERE name = $1").bind(name.to_owned()).execute(&mut *w.tx).await?;
        sqlx::query("INSERT INTO tokens (hash, name, admin, created_at) VALUES ($1, $2, $3, $4)")
            .bind(hash_token(&secret))
            .bind(name.to_owned())
            .bind(i64::from(admin))
            .bind(super::now_millis())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(secret)
    }

    pub async fn token(&self, secret: &str) -> Result<Option<TokenInfo>> {
        let row = sqlx::query("SELECT name, admin FROM tokens WHERE hash = $1").bind(hash_token(secret)).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(row) => Some(TokenInfo { name: row.try_get("name")?, admin: row.try_get::<i64, _>("admin")? != 0 }),
            None => None,
        })
    }

    pub async fn has_admin_token(&self) -> Result<bool> {
        Ok(sqlx::query("SELECT name FROM tokens WHERE admin = 1").fetch_optional(&self.pool).await?.is_some())
    }
}
