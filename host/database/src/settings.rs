//! Settings replicas share (`chela_settings`): one value per name, set
//! once by whichever replica gets there first (the generated gateway token).
//!
//! Must not: hold anything a replica may change after it was set.

use super::{Database, DbError};

impl Database {
    /// The value of setting `name`: the one stored, or `value` when there
    /// was none (stored now; of replicas racing, the first one's wins).
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, DbError> {
        let (name, value) = (name.to_string(), value.to_string());
        self.run(move |c| async move {
            c.execute(
                "insert into chela_settings (name, value) values ($1, $2) on conflict (name) do nothing",
                &[&name, &value],
            )
            .await?;
            Ok(c.query_one("select value from chela_settings where name = $1", &[&name]).await?.get(0))
        })
        .await
    }
}
