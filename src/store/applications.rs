//! The `applications` table: a citizen's application for the pair of certificates, from
//! review to issuance. Must never: decide whether an application is approved (the RA does).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::{touched_one, touched_the_row};
use super::schema::*;
use super::{StoreError, Tx};

pub use crate::vocab::ApplicationStatus;

/// An application for the pair of certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Unguessable id (UUID v4).
    pub id: String,
    /// Where it stands.
    pub status: ApplicationStatus,
    /// Holder's IIN from the consent token.
    pub holder_iin: String,
    /// Holder's surname.
    pub surname: String,
    /// Holder's given name.
    pub given_name: String,
    /// Holder's patronymic, if any.
    pub patronymic: Option<String>,
    /// Holder's birth date.
    pub birth_date: NaiveDate,
    /// E-mail for notifications and the SAN.
    pub email: Option<String>,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Key storage type.
    pub storage: String,
    /// Agreement version the citizen accepted.
    pub agreement_version: String,
    /// SHA-256 of the application's access token.
    pub access_token_hash: Vec<u8>,
    /// `jti` of the consent token that created it.
    pub consent_jti: String,
    /// Digital ID's register match.
    pub register_match: bool,
    /// Digital ID's liveness result.
    pub liveness: bool,
    /// AUTH CSR (DER), kept for review.
    pub auth_csr: Vec<u8>,
    /// SIGN CSR (DER), kept for review.
    pub sign_csr: Vec<u8>,
    /// Operator's reason for a rejection.
    pub reason: Option<String>,
    /// Operator who decided.
    pub decided_by: Option<String>,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Last changed (UTC).
    pub updated_at: NaiveDateTime,
    /// Why it went to operator review (empty when issued automatically, and for applications
    /// stored before the reasons were recorded).
    pub review_reasons: Vec<String>,
    /// For a re-issue: the application whose pair this one replaces.
    pub replaces_application_id: Option<String>,
    /// Submitted through the citizen's pages (finished there, with the local agent's keys).
    pub through_pages: bool,
}

// `None` is written as NULL, not DEFAULT (no nullable column has another default): the
// insert is then the same statement every time, and prepared once.
#[derive(Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = applications, treat_none_as_default_value = false)]
struct ApplicationRow {
    id: String,
    status: String,
    holder_iin: String,
    surname: String,
    given_name: String,
    patronymic: Option<String>,
    birth_date: NaiveDate,
    email: Option<String>,
    language: String,
    storage: String,
    agreement_version: String,
    access_token_hash: Vec<u8>,
    consent_jti: String,
    register_match: bool,
    liveness: bool,
    auth_csr: Vec<u8>,
    sign_csr: Vec<u8>,
    reason: Option<String>,
    decided_by: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    review_reasons: Option<String>,
    replaces_application_id: Option<String>,
    through_pages: bool,
}

impl From<&Application> for ApplicationRow {
    fn from(a: &Application) -> Self {
        ApplicationRow {
            id: a.id.clone(),
            status: a.status.as_str().to_owned(),
            holder_iin: a.holder_iin.clone(),
            surname: a.surname.clone(),
            given_name: a.given_name.clone(),
            patronymic: a.patronymic.clone(),
            birth_date: a.birth_date,
            email: a.email.clone(),
            language: a.language.clone(),
            storage: a.storage.clone(),
            agreement_version: a.agreement_version.clone(),
            access_token_hash: a.access_token_hash.clone(),
            consent_jti: a.consent_jti.clone(),
            register_match: a.register_match,
            liveness: a.liveness,
            auth_csr: a.auth_csr.clone(),
            sign_csr: a.sign_csr.clone(),
            reason: a.reason.clone(),
            decided_by: a.decided_by.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            review_reasons: if a.review_reasons.is_empty() {
                None
            } else {
                serde_json::to_string(&a.review_reasons).ok()
            },
            replaces_application_id: a.replaces_application_id.clone(),
            through_pages: a.through_pages,
        }
    }
}

impl TryFrom<ApplicationRow> for Application {
    type Error = StoreError;
    fn try_from(r: ApplicationRow) -> Result<Self, StoreError> {
        let review_reasons = match r.review_reasons.as_deref() {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                table: "applications",
                message: format!("application {}: review_reasons: {e}", r.id),
            })?,
        };
        Ok(Application {
            status: super::rows::decode_text(
                "applications",
                "ApplicationStatus",
                &r.status,
                ApplicationStatus::parse,
            )?,
            id: r.id,
            holder_iin: r.holder_iin,
            surname: r.surname,
            given_name: r.given_name,
            patronymic: r.patronymic,
            birth_date: r.birth_date,
            email: r.email,
            language: r.language,
            storage: r.storage,
            agreement_version: r.agreement_version,
            access_token_hash: r.access_token_hash,
            consent_jti: r.consent_jti,
            register_match: r.register_match,
            liveness: r.liveness,
            auth_csr: r.auth_csr,
            sign_csr: r.sign_csr,
            reason: r.reason,
            decided_by: r.decided_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            review_reasons,
            replaces_application_id: r.replaces_application_id,
            through_pages: r.through_pages,
        })
    }
}

row_decoders!(ApplicationQuery, applications, ApplicationRow => Application, first_application, load_applications);

impl Tx<'_> {
    /// Insert a new application.
    pub fn insert_application(&mut self, app: &Application) -> Result<(), StoreError> {
        let insert = diesel::insert_into(applications::table).values(ApplicationRow::from(app));
        native!(self.conn, |c| insert.execute(c))?;
        Ok(())
    }

    /// The application with `id`, if any.
    pub fn application(&mut self, id: &str) -> Result<Option<Application>, StoreError> {
        self.first_application(applications::table.find(id).into_boxed())
    }

    /// Applications in `status`, oldest first.
    pub fn applications_with_status(
        &mut self,
        status: ApplicationStatus,
    ) -> Result<Vec<Application>, StoreError> {
        self.load_applications(
            applications::table
                .filter(applications::status.eq(status.as_str()))
                .order(applications::created_at.asc())
                .into_boxed(),
        )
    }

    /// Move an application from `from` to `to`, recording the reason and who decided.
    /// Returns `false` (and changes nothing) when it is not in `from` — so two operators
    /// deciding at once cannot both succeed.
    pub fn decide_application(
        &mut self,
        id: &str,
        from: ApplicationStatus,
        to: ApplicationStatus,
        reason: Option<&str>,
        decided_by: &str,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(
            applications::table
                .find(id)
                .filter(applications::status.eq(from.as_str())),
        )
        .set((
            applications::status.eq(to.as_str()),
            applications::reason.eq(reason),
            applications::decided_by.eq(Some(decided_by)),
            applications::updated_at.eq(at),
        ))
        .execute(self.conn);
        touched_one(updated)
    }

    /// Applications, newest first, optionally filtered by status and holder.
    pub fn list_applications(
        &mut self,
        status: Option<ApplicationStatus>,
        iin: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError> {
        let mut query = applications::table.into_boxed();
        if let Some(status) = status {
            query = query.filter(applications::status.eq(status.as_str()));
        }
        if let Some(iin) = iin {
            query = query.filter(applications::holder_iin.eq(iin.to_owned()));
        }
        self.load_applications(query.order(applications::created_at.desc()).limit(limit))
    }

    /// Move an application to `status`.
    pub fn set_application_status(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        let updated = diesel::update(applications::table.find(id))
            .set((
                applications::status.eq(status.as_str()),
                applications::updated_at.eq(at),
            ))
            .execute(self.conn);
        touched_the_row(updated)
    }

    /// [`Tx::set_application_status`], returning the application as it now is (`None`: no
    /// application has `id`). On PostgreSQL one statement (`UPDATE … RETURNING`).
    pub fn set_application_status_returning(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        at: NaiveDateTime,
    ) -> Result<Option<Application>, StoreError> {
        match &mut *self.conn {
            super::DbConnection::Pg(c) => {
                let row: Option<ApplicationRow> = SetStatusPg {
                    id,
                    status: status.as_str(),
                    at,
                }
                .get_result(c)
                .optional()?;
                row.map(Application::try_from).transpose()
            }
            super::DbConnection::Sqlite(_) => {
                self.set_application_status(id, status, at)?;
                self.application(id)
            }
        }
    }

    /// The application created with the consent token `jti`, if any.
    pub fn application_by_consent_jti(
        &mut self,
        jti: &str,
    ) -> Result<Option<Application>, StoreError> {
        self.first_application(
            applications::table
                .filter(applications::consent_jti.eq(jti))
                .into_boxed(),
        )
    }

    /// Replace an application's access token (only its hash is stored).
    pub fn set_access_token_hash(&mut self, id: &str, hash: &[u8]) -> Result<(), StoreError> {
        let updated = diesel::update(applications::table.find(id))
            .set(applications::access_token_hash.eq(hash))
            .execute(self.conn);
        touched_the_row(updated)
    }
}

/// `UPDATE applications SET status, updated_at WHERE id RETURNING *`, as a query of its own:
/// unlike diesel's updates it is kept prepared on each connection, so PostgreSQL parses and
/// plans it once.
struct SetStatusPg<'a> {
    id: &'a str,
    status: &'a str,
    at: NaiveDateTime,
}

/// The statement cache's key for [`SetStatusPg`] (one SQL text whatever the values).
struct SetStatusPgId;

impl diesel::query_builder::QueryId for SetStatusPg<'_> {
    type QueryId = SetStatusPgId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for SetStatusPg<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Conn> RunQueryDsl<Conn> for SetStatusPg<'_> {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for SetStatusPg<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        out.push_sql("UPDATE applications SET status = ");
        out.push_bind_param::<Text, str>(self.status)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, str>(self.id)?;
        out.push_sql(" RETURNING *");
        Ok(())
    }
}
