//! The `outbox` table: e-mails waiting to be delivered, their leases and retries. Must
//! never: render or send a message (`notify` does).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::OptionalExtension;

use super::rows::touched_one;
use super::schema::*;
use super::{StoreError, Tx};

text_enum!(
    /// Delivery state of an outbox row.
    OutboxStatus, "outbox" {
        /// Waiting to be sent (or retried).
        Pending = "pending",
        /// Delivered to the SMTP server.
        Sent = "sent",
        /// Gave up after the maximum number of attempts.
        Dead = "dead",
    }
);

/// An e-mail waiting to be (or already) delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Row id (UUID), also the base of the Message-ID.
    pub id: String,
    /// Event name (e.g. `application_received`).
    pub event: String,
    /// Recipient address.
    pub recipient: String,
    /// `kk`, `ru` or `en`.
    pub language: String,
    /// Template parameters, JSON.
    pub payload: String,
    /// Delivery state.
    pub status: OutboxStatus,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Not before this time.
    pub next_attempt_at: NaiveDateTime,
    /// Worker currently holding the lease.
    pub lease_owner: Option<String>,
    /// Lease expiry.
    pub lease_until: Option<NaiveDateTime>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Enqueued at.
    pub created_at: NaiveDateTime,
    /// Delivered at.
    pub sent_at: Option<NaiveDateTime>,
}

impl OutboxMessage {
    /// A new message, due at `at`, with a fresh id (the base of its Message-ID).
    pub fn pending(
        event: &str,
        recipient: &str,
        language: &str,
        payload: String,
        at: NaiveDateTime,
    ) -> Self {
        OutboxMessage {
            id: uuid::Uuid::new_v4().to_string(),
            event: event.to_owned(),
            recipient: recipient.to_owned(),
            language: language.to_owned(),
            payload,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            created_at: at,
            sent_at: None,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
struct OutboxRow {
    id: String,
    event: String,
    recipient: String,
    language: String,
    payload: String,
    status: String,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    lease_owner: Option<String>,
    lease_until: Option<NaiveDateTime>,
    last_error: Option<String>,
    created_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
}

impl From<&OutboxMessage> for OutboxRow {
    fn from(m: &OutboxMessage) -> Self {
        OutboxRow {
            id: m.id.clone(),
            event: m.event.clone(),
            recipient: m.recipient.clone(),
            language: m.language.clone(),
            payload: m.payload.clone(),
            status: m.status.as_str().to_owned(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            lease_owner: m.lease_owner.clone(),
            lease_until: m.lease_until,
            last_error: m.last_error.clone(),
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(OutboxMessage {
            status: OutboxStatus::decode(&r.status)?,
            id: r.id,
            event: r.event,
            recipient: r.recipient,
            language: r.language,
            payload: r.payload,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

row_decoders!(OutboxMessageQuery, outbox, OutboxRow => OutboxMessage, first_message, load_messages);

impl Tx<'_> {
    /// Queue an e-mail.
    pub fn enqueue_message(&mut self, message: &OutboxMessage) -> Result<(), StoreError> {
        diesel::insert_into(outbox::table)
            .values(OutboxRow::from(message))
            .execute(self.conn)?;
        Ok(())
    }

    /// The outbox row with `id`, if any.
    pub fn message(&mut self, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
        self.first_message(outbox::table.find(id).into_boxed())
    }

    /// Outbox rows, newest first, optionally in one status.
    pub fn list_messages(
        &mut self,
        status: Option<OutboxStatus>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut query = outbox::table.into_boxed();
        if let Some(status) = status {
            query = query.filter(outbox::status.eq(status.as_str()));
        }
        self.load_messages(query.order(outbox::created_at.desc()).limit(limit))
    }

    /// Lease up to `limit` due pending rows to `owner` until `lease_until`. A row whose lease
    /// expired (its worker died) is due again. Each row is claimed by one worker only: the
    /// claim is a conditional update.
    pub fn claim_due_messages(
        &mut self,
        owner: &str,
        now: NaiveDateTime,
        lease_until: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let free = outbox::lease_until
            .is_null()
            .or(outbox::lease_until.lt(now));
        let candidates: Vec<String> = outbox::table
            .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
            .filter(outbox::next_attempt_at.le(now))
            .filter(free)
            .order(outbox::next_attempt_at.asc())
            .limit(limit)
            .select(outbox::id)
            .load(self.conn)?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for id in candidates {
            let n = diesel::update(
                outbox::table
                    .find(&id)
                    .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                    .filter(
                        outbox::lease_until
                            .is_null()
                            .or(outbox::lease_until.lt(now)),
                    ),
            )
            .set((
                outbox::lease_owner.eq(Some(owner)),
                outbox::lease_until.eq(Some(lease_until)),
            ))
            .execute(self.conn)?;
            if n == 1 {
                if let Some(m) = self.message(&id)? {
                    claimed.push(m);
                }
            }
        }
        Ok(claimed)
    }

    /// Record a delivery by the lease holder. Returns `false` if the lease was lost.
    pub fn mark_message_sent(
        &mut self,
        id: &str,
        owner: &str,
        at: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        let updated = diesel::update(outbox::table.find(id).filter(outbox::lease_owner.eq(owner)))
            .set((
                outbox::status.eq(OutboxStatus::Sent.as_str()),
                outbox::sent_at.eq(Some(at)),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::lease_owner.eq(None::<String>),
                outbox::lease_until.eq(None::<NaiveDateTime>),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(self.conn);
        touched_one(updated)
    }

    /// Record a failed attempt by the lease holder: retry at `next_attempt_at`, or `dead`.
    pub fn mark_message_failed(
        &mut self,
        id: &str,
        owner: &str,
        error: &str,
        next_attempt_at: NaiveDateTime,
        dead: bool,
    ) -> Result<bool, StoreError> {
        let status = if dead {
            OutboxStatus::Dead
        } else {
            OutboxStatus::Pending
        };
        let updated = diesel::update(outbox::table.find(id).filter(outbox::lease_owner.eq(owner)))
            .set((
                outbox::status.eq(status.as_str()),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::last_error.eq(Some(error)),
                outbox::lease_owner.eq(None::<String>),
                outbox::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(self.conn);
        touched_one(updated)
    }

    /// Outbox rows per status.
    pub fn outbox_depth(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(outbox::table
            .group_by(outbox::status)
            .select((outbox::status, diesel::dsl::count_star()))
            .load(self.conn)?)
    }

    /// Put a `dead` outbox row back in the queue, due now. Returns `false` if it is not dead.
    pub fn retry_message(&mut self, id: &str, at: NaiveDateTime) -> Result<bool, StoreError> {
        let updated = diesel::update(
            outbox::table
                .find(id)
                .filter(outbox::status.eq(OutboxStatus::Dead.as_str())),
        )
        .set((
            outbox::status.eq(OutboxStatus::Pending.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(at),
            outbox::lease_owner.eq(None::<String>),
            outbox::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(self.conn);
        touched_one(updated)
    }
}
