//! Sites: what a sign-in reaches (one row per accessible-resources entry) and cloud ids learnt by site URL.

use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::{GrantId, Result, Stamp, Store};

/// A site's cloud id as Latch learnt it without a sign-in (`/_edge/tenant_info`) or from a
/// sign-in's accessible-resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteIdRow {
    /// The site's base URL (`https://acme.atlassian.net`).
    pub site_url: String,
    /// Its cloud id.
    pub cloud_id: String,
    /// When it was learnt.
    pub learnt_at: OffsetDateTime,
    /// Where from (`tenant_info`, `accessible_resources`).
    pub source: String,
}

/// A site a grant can reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteRow {
    /// Cloud id (repeats across products).
    pub cloud_id: String,
    /// Site name.
    pub name: String,
    /// Site URL.
    pub url: String,
    /// Scopes granted on it, space-separated.
    pub scopes: String,
}

impl Store {
    /// Remembers a site's cloud id.
    pub fn site_id_put(&self, row: &SiteIdRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO site_ids (site_url, cloud_id, learnt_at, source) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(site_url) DO UPDATE SET cloud_id = excluded.cloud_id,
                 learnt_at = excluded.learnt_at, source = excluded.source",
            params![row.site_url, row.cloud_id, Stamp(row.learnt_at), row.source],
        )?;
        Ok(())
    }

    /// A site's remembered cloud id.
    pub fn site_id(&self, site_url: &str) -> Result<Option<SiteIdRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT site_url, cloud_id, learnt_at, source FROM site_ids WHERE site_url = ?1",
                [site_url],
                |r| {
                    Ok(SiteIdRow {
                        site_url: r.get(0)?,
                        cloud_id: r.get(1)?,
                        learnt_at: r.get::<_, Stamp>(2)?.0,
                        source: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every remembered site id.
    pub fn site_ids(&self) -> Result<Vec<SiteIdRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT site_url, cloud_id, learnt_at, source FROM site_ids ORDER BY site_url",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SiteIdRow {
                site_url: r.get(0)?,
                cloud_id: r.get(1)?,
                learnt_at: r.get::<_, Stamp>(2)?.0,
                source: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces a grant's sites.
    pub fn sites_replace(&mut self, grant_id: &GrantId, sites: &[SiteRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM sites WHERE grant_id = ?1", [grant_id.as_str()])?;
        for site in sites {
            tx.execute(
                "INSERT INTO sites (grant_id, cloud_id, name, url, scopes)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    grant_id.as_str(),
                    site.cloud_id,
                    site.name,
                    site.url,
                    site.scopes
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A grant's sites.
    pub fn sites(&self, grant_id: &GrantId) -> Result<Vec<SiteRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT cloud_id, name, url, scopes FROM sites WHERE grant_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([grant_id.as_str()], |r| {
            Ok(SiteRow {
                cloud_id: r.get(0)?,
                name: r.get(1)?,
                url: r.get(2)?,
                scopes: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
