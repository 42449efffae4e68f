//! Group commit: the write transactions of one instance that arrive while another is in
//! flight share one database transaction, and so one commit (one fsync for many).
//!
//! Writers queue for a baton, first come first served. The writer holding it either begins
//! a transaction (when none is open) or joins the open one, and runs its closure inside a
//! savepoint of its own: a closure that fails rolls back to its savepoint, without touching
//! what the others wrote. Then, if writers are waiting and the batch is neither full (256 on
//! SQLite; 60 on PostgreSQL, whose backends cache 64 subtransactions) nor 50 ms old, the baton
//! passes to the next one, which joins the same transaction; otherwise the holder commits (or
//! rolls back, if the transaction was lost) and every member learns the outcome. Nobody waits
//! on a timer: a lone writer commits at once, and under load a transaction takes everyone who
//! arrived while the previous commit was in flight. A long write (`Store::write_alone`) first
//! commits the open batch and then runs in a transaction of its own.
//!
//! A member's audit entries are kept with the batch and inserted, every kept member's in chain
//! order, just before the commit; the chain's head passes from member to member (nothing in a
//! write transaction reads the log but its head). On PostgreSQL a kept member's savepoint is
//! left open until the commit (`keep_member`): one round trip less in the batch's series.
//!
//! What the members of one batch see is exactly what serial transactions would have seen:
//! they run one after another on one connection, each reading what the earlier ones wrote,
//! so unique indexes, counted limits and the audit chain hold across a batch as they do
//! across transactions. Every member's answer, a value or a refusal, is returned only after
//! the commit that made what it saw durable; if the batch is lost instead (a savepoint that
//! could not be opened, released or rolled back, a member that panicked), every member gets
//! the retryable `StoreError::Batch`/`BatchLost`, nothing of the batch is written. (On
//! PostgreSQL an error aborts the savepoint it happens in: a member may not swallow one and
//! answer `Ok`; an insert whose key may be taken runs in a savepoint of its own, `rows`.) Must
//! never: answer a member before its batch's commit, let one member's refusal undo another's
//! work, or hold the database lock while nobody runs.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;

use diesel::connection::TransactionManager;
use diesel::Connection;

use super::{DbConnection, Manager, StoreError};

/// Members per transaction at most on SQLite; a writer arriving at a full batch joins the
/// next one.
pub(super) const MAX_BATCH: usize = 256;
/// On PostgreSQL: each member's savepoint is a subtransaction, and a backend caches 64 of them
/// per transaction; past that, every snapshot in the cluster consults `pg_subtrans` until the
/// transaction ends.
pub(super) const MAX_BATCH_POSTGRES: usize = 60;
/// A batch older than this takes no more members: what ran early does not wait long for its
/// commit behind what keeps arriving.
const MAX_BATCH_AGE: std::time::Duration = std::time::Duration::from_millis(50);

type Pooled = r2d2::PooledConnection<Manager>;

/// The shared state of the writers of one store.
#[derive(Default)]
pub(super) struct Group {
    state: Mutex<State>,
    commits: AtomicU64,
    writes: AtomicU64,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .field("writes", &self.writes.load(Ordering::Relaxed))
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// Someone holds the baton.
    busy: bool,
    /// Writers waiting for it, oldest first.
    queue: VecDeque<Waiter>,
    /// The ticket the baton was handed to and not yet taken up.
    handed: Option<u64>,
    next_ticket: u64,
    /// The open transaction, between two members.
    open: Option<OpenBatch>,
}

struct Waiter {
    ticket: u64,
    thread: Thread,
}

/// A transaction begun and not yet committed, with the members that ran in it.
pub(super) struct OpenBatch {
    pub(super) conn: Pooled,
    outcome: Arc<Outcome>,
    /// Members that ran in it (failed ones included): the cap counts them.
    ran: usize,
    /// When it began.
    began: std::time::Instant,
    /// It takes no other member (a long write runs alone: see `Store::write_alone`).
    alone: bool,
    /// Members whose work it holds.
    kept: u64,
    /// The transaction can no longer commit (a savepoint could not be opened, released or
    /// rolled back; a member panicked): it is rolled back and every member of it fails.
    lost: bool,
    /// The audit chain's head as the last kept member left it (see `Tx::append_chained`).
    chain_head: Option<(i64, String)>,
    /// The audit entries of the kept members, inserted just before the commit.
    pending_audit: Vec<super::AuditRecord>,
}

/// How a batch ended, for the members that wait on it.
#[derive(Default)]
struct Outcome {
    result: Mutex<Option<Result<(), Arc<StoreError>>>>,
    done: Condvar,
}

impl Outcome {
    fn set(&self, result: Result<(), Arc<StoreError>>) {
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<(), Arc<StoreError>> {
        let mut guard = self.result.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = guard.as_ref() {
                return result.clone();
            }
            guard = self
                .done
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Counters of the grouped transactions since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Transactions committed with at least one member's work.
    pub commits: u64,
    /// Members' writes those transactions committed.
    pub writes: u64,
}

impl GroupCommitStats {
    /// Writes per committed transaction (0 before the first commit).
    pub fn writes_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.writes as f64 / self.commits as f64
        }
    }
}

/// The baton: while it is held, nobody else begins, joins or commits a transaction.
pub(super) struct Baton<'g> {
    group: &'g Group,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    /// Wait for the baton, first come first served.
    pub(super) fn baton(&self) -> Baton<'_> {
        let mut state = self.lock();
        if !state.busy {
            state.busy = true;
            return Baton { group: self };
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(Waiter {
            ticket,
            thread: std::thread::current(),
        });
        loop {
            if state.handed == Some(ticket) {
                state.handed = None;
                return Baton { group: self };
            }
            drop(state);
            std::thread::park();
            state = self.lock();
        }
    }

    /// Commit (or, lost, roll back) `batch` and tell its members. Only the baton's holder
    /// calls it.
    fn finish(&self, mut batch: OpenBatch) {
        let conn: &mut DbConnection = &mut batch.conn;
        let result = if batch.lost {
            // A failed rollback leaves the connection broken; r2d2 then discards it.
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(Arc::new(StoreError::BatchLost))
        } else {
            super::audit_log::insert_pending_audit(conn, &batch.pending_audit)
                .and_then(|()| {
                    <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
                })
                .map_err(|e| Arc::new(StoreError::from(e)))
        };
        if result.is_ok() && batch.kept > 0 {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.writes.fetch_add(batch.kept, Ordering::Relaxed);
        }
        if result.is_err() {
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
        }
        batch.outcome.set(result);
    }

    /// Writers waiting for the baton (tests wait for a batch to gather).
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.lock().queue.len()
    }
}

impl Baton<'_> {
    /// The open transaction, if there is one: the holder runs in it.
    pub(super) fn take_open(&self) -> Option<OpenBatch> {
        self.group.lock().open.take()
    }

    /// A transaction just begun on `conn`; `alone`, it takes no other member.
    pub(super) fn opened(conn: Pooled, alone: bool) -> OpenBatch {
        OpenBatch {
            conn,
            outcome: Arc::new(Outcome::default()),
            ran: 0,
            began: std::time::Instant::now(),
            alone,
            kept: 0,
            lost: false,
            chain_head: None,
            pending_audit: Vec::new(),
        }
    }

    /// Commit the open transaction, if there is one, keeping the baton (a long write then
    /// runs in a transaction of its own, and the members before it need not wait for it).
    pub(super) fn close_open(&self) {
        if let Some(batch) = self.take_open() {
            self.group.finish(batch);
        }
    }

    /// Run `f` as one member of `batch`, in a savepoint of its own, then either hand the
    /// baton on (the batch stays open for the next waiting writer) or end the batch. Returns
    /// `f`'s value once the transaction holding it is committed.
    pub(super) fn run<T, E>(
        self,
        mut batch: OpenBatch,
        backend: super::Backend,
        f: impl FnOnce(&mut super::Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let conn: &mut DbConnection = &mut batch.conn;
        // The member's answer, and whether the batch holds its work.
        let (ran, kept) = match <DbConnection as Connection>::TransactionManager::begin_transaction(
            conn,
        ) {
            Err(e) => {
                batch.lost = true;
                (Err(E::from(StoreError::from(e))), false)
            }
            Ok(()) => {
                let mut tx = super::Tx {
                    conn: &mut *conn,
                    backend,
                    audit_locked: backend == super::Backend::Postgres,
                    chain_head: batch.chain_head.clone(),
                    pending_audit: Some(Vec::new()),
                };
                let result = catch_unwind(AssertUnwindSafe(|| f(&mut tx)));
                // The head a member moved, and the entries it appended, are the batch's only
                // if its work is kept; otherwise the head stays where the member found it.
                let chain_head = tx.chain_head.take();
                let appended = tx.pending_audit.take().unwrap_or_default();
                match result {
                    Ok(Ok(value)) => {
                        batch.chain_head = chain_head;
                        batch.pending_audit.extend(appended);
                        match keep_member(conn, backend) {
                            Ok(()) => (Ok(value), true),
                            Err(e) => {
                                batch.lost = true;
                                (Err(E::from(StoreError::from(e))), false)
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        if <DbConnection as Connection>::TransactionManager::rollback_transaction(
                            conn,
                        )
                        .is_err()
                        {
                            batch.lost = true;
                        }
                        (Err(e), false)
                    }
                    Err(panic) => {
                        batch.lost = true;
                        let outcome = batch.outcome.clone();
                        self.end(batch);
                        drop(outcome);
                        resume_unwind(panic);
                    }
                }
            }
        };
        batch.ran += 1;
        if kept {
            batch.kept += 1;
        }
        let outcome = batch.outcome.clone();
        let cap = match backend {
            super::Backend::Sqlite => MAX_BATCH,
            super::Backend::Postgres => MAX_BATCH_POSTGRES,
        };
        let mut state = self.group.lock();
        if !batch.lost
            && !batch.alone
            && batch.ran < cap
            && batch.began.elapsed() < MAX_BATCH_AGE
            && !state.queue.is_empty()
        {
            state.open = Some(batch);
            self.hand_on(state);
        } else {
            drop(state);
            self.end(batch);
        }
        // A refusal waits for the batch too: it may rest on what an earlier member wrote (a
        // token it recorded, a key it reserved), which is only a fact once committed; if the
        // batch is lost, the refusal is not final and the retryable failure is returned.
        match (outcome.wait(), ran) {
            (Ok(()), ran) => ran,
            (Err(e), _) => Err(E::from(StoreError::Batch(e))),
        }
    }

    /// Commit (or, lost, roll back) `batch` and tell its members; then the baton goes on.
    fn end(self, batch: OpenBatch) {
        self.group.finish(batch);
        // `self` drops here and hands the baton on.
    }

    /// Hand the baton to the oldest waiting writer, or put it down.
    fn hand_on(self, mut state: MutexGuard<'_, State>) {
        match state.queue.pop_front() {
            Some(next) => {
                state.handed = Some(next.ticket);
                drop(state);
                next.thread.unpark();
            }
            None => state.busy = false,
        }
        std::mem::forget(self);
    }
}

/// End a member whose work the batch keeps. SQLite: release its savepoint. PostgreSQL: leave
/// it open, which keeps the same work at no round trip (the commit releases every savepoint;
/// the members run in series on one connection, so a release would be one more statement's
/// round trip in the series). Only diesel's count of open levels goes down: the next member's
/// savepoint then takes the same name, and a rollback to that name goes to the newest one
/// (PostgreSQL keeps an older savepoint of the same name), i.e. to that member's start. Not
/// on SQLite, which checks every open savepoint on each page it writes.
fn keep_member(conn: &mut DbConnection, backend: super::Backend) -> diesel::QueryResult<()> {
    use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
    match backend {
        super::Backend::Sqlite => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
        }
        super::Backend::Postgres => {
            match <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(
                conn,
            ) {
                TransactionManagerStatus::Valid(status) => {
                    status.change_transaction_depth(TransactionDepthChange::DecreaseDepth)
                }
                TransactionManagerStatus::InError => {
                    Err(diesel::result::Error::BrokenTransactionManager)
                }
            }
        }
    }
}

impl Drop for Baton<'_> {
    fn drop(&mut self) {
        let state = self.group.lock();
        Baton { group: self.group }.hand_on(state);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use super::super::{Store, StoreError};
    use crate::config::{DatabaseConfig, DatabaseUrl};

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(
            &DatabaseUrl::Sqlite(dir.path().join("t.db")),
            &DatabaseConfig::default(),
        )
        .unwrap()
    }

    fn counted(store: &Store) -> i64 {
        store
            .read(|tx| tx.table_counts())
            .unwrap()
            .rate_limit_events
    }

    fn event(tx: &mut super::super::Tx<'_>, subject: &str) -> Result<(), StoreError> {
        tx.record_rate_event("test", subject, chrono::Utc::now().naive_utc())
    }

    /// Start `n` writers one after another, each queued behind the held baton before the
    /// next starts, so that their order in the batch is known.
    fn queue_writers<T: Send + 'static>(
        store: &Store,
        writers: Vec<Box<dyn FnOnce(Store) -> T + Send>>,
    ) -> Vec<std::thread::JoinHandle<T>> {
        let mut handles = Vec::new();
        for (i, writer) in writers.into_iter().enumerate() {
            let s = store.clone();
            handles.push(std::thread::spawn(move || writer(s)));
            while store.queued_writes() < i + 1 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        handles
    }

    #[test]
    fn a_lone_write_commits_at_once_in_a_transaction_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let before = store.group_commit_stats();
        store.write(|tx| event(tx, "a")).unwrap();
        let after = store.group_commit_stats();
        assert_eq!(after.commits - before.commits, 1);
        assert_eq!(after.writes - before.writes, 1);
        assert_eq!(counted(&store), 1);
    }

    #[test]
    fn writes_queued_during_a_commit_share_one_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let before = store.group_commit_stats();
        let hold = store.hold_writes();
        type Writer = Box<dyn FnOnce(Store) -> Result<(), StoreError> + Send>;
        let ok = |subject: &'static str| -> Writer {
            Box::new(move |s: Store| s.write(|tx| event(tx, subject)))
        };
        let failing: Writer = Box::new(|s: Store| {
            s.write(|tx| {
                // Written, then refused: its own savepoint undoes it.
                event(tx, "undone")?;
                Err(StoreError::Corrupt {
                    table: "test",
                    message: "refused".to_owned(),
                })
            })
        });
        let handles = queue_writers(&store, vec![ok("a"), failing, ok("b"), ok("c")]);
        assert_eq!(counted(&store), 0, "nothing runs while the baton is held");
        drop(hold);
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
        assert!(
            matches!(&results[1], Err(StoreError::Corrupt { message, .. }) if message == "refused"),
            "{:?}",
            results[1]
        );
        let after = store.group_commit_stats();
        assert_eq!(
            after.commits - before.commits,
            1,
            "one transaction for all four"
        );
        assert_eq!(after.writes - before.writes, 3);
        assert_eq!(counted(&store), 3, "the refused write left nothing");
        let undone: i64 = store
            .read(|tx| tx.rate_events_since("test", "undone", chrono::NaiveDateTime::MIN))
            .unwrap();
        assert_eq!(undone, 0);
    }

    /// A chain whose hash is the previous hash and the subject: enough to see the links.
    struct Links;
    impl super::super::AuditChain for Links {
        fn genesis(&self) -> &str {
            "genesis"
        }
        fn hash(&self, record: &super::super::AuditRecord) -> String {
            format!("{}>{}", record.prev_hash, record.subject)
        }
    }

    fn audited(tx: &mut super::super::Tx<'_>, subject: &str) -> Result<(), StoreError> {
        let entry = super::super::AuditEntry {
            at: chrono::Utc::now().naive_utc(),
            actor: "test".to_owned(),
            action: "test".to_owned(),
            subject: subject.to_owned(),
            details: serde_json::json!({}),
        };
        tx.append_chained(&entry, &Links).map(drop)
    }

    #[test]
    fn the_chain_head_passes_only_from_members_whose_work_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let hold = store.hold_writes();
        type Writer = Box<dyn FnOnce(Store) -> Result<(), StoreError> + Send>;
        let ok = |subject: &'static str| -> Writer {
            Box::new(move |s: Store| s.write(|tx| audited(tx, subject)))
        };
        let failing = |subject: &'static str| -> Writer {
            Box::new(move |s: Store| {
                s.write(|tx| {
                    // Appended, then refused: its savepoint undoes the entry, and the head
                    // it moved must not reach the next member.
                    audited(tx, subject)?;
                    Err(StoreError::Corrupt {
                        table: "test",
                        message: "refused".to_owned(),
                    })
                })
            })
        };
        let before = store.group_commit_stats();
        let handles = queue_writers(
            &store,
            vec![failing("x"), ok("a"), failing("y"), ok("b"), ok("c")],
        );
        drop(hold);
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().map(Result::is_ok).collect::<Vec<_>>(),
            [false, true, false, true, true]
        );
        assert_eq!(store.group_commit_stats().commits - before.commits, 1);
        let records = store.read(|tx| tx.audit_tail(10)).unwrap();
        let links: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.seq,
                    r.subject.as_str(),
                    r.prev_hash.as_str(),
                    r.hash.as_str(),
                )
            })
            .collect();
        assert_eq!(
            links,
            [
                (1, "a", "genesis", "genesis>a"),
                (2, "b", "genesis>a", "genesis>a>b"),
                (3, "c", "genesis>a>b", "genesis>a>b>c"),
            ]
        );
        // The next transaction reads the head it did not write.
        store.write(|tx| audited(tx, "d")).unwrap();
        let last = store.read(|tx| tx.audit_tail(1)).unwrap();
        assert_eq!(last[0].prev_hash, "genesis>a>b>c");
        assert_eq!(last[0].seq, 4);
    }

    #[test]
    fn a_write_that_panics_loses_its_batch_and_the_next_write_works() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let hold = store.hold_writes();
        let handles = queue_writers(
            &store,
            vec![
                Box::new(|s: Store| s.write(|tx| event(tx, "a")).map_err(|e| e.to_string()))
                    as Box<dyn FnOnce(Store) -> Result<(), String> + Send>,
                Box::new(|s: Store| {
                    s.write(|tx| -> Result<(), StoreError> {
                        event(tx, "b")?;
                        panic!("a writer panics in the middle of its transaction");
                    })
                    .map_err(|e| e.to_string())
                }),
            ],
        );
        drop(hold);
        let mut handles = handles.into_iter();
        let first = handles.next().unwrap().join().unwrap();
        assert!(first.unwrap_err().contains("rolled back"));
        assert!(
            handles.next().unwrap().join().is_err(),
            "the panic reaches its own caller"
        );
        assert_eq!(counted(&store), 0, "the lost batch wrote nothing");
        store.write(|tx| event(tx, "c")).unwrap();
        assert_eq!(counted(&store), 1);
    }
}
