//! Two instances on one PostgreSQL database under load at once, with group commit batching
//! each instance's issuance transactions: both get applications at the same moment from many
//! clients, among them conflicts sent to both at once (one consent token with one body; one
//! key under two holders' tokens). Afterwards the answers and the database must agree: one
//! application per consent token, one certificate per public key, every certificate a client
//! received stored byte for byte as issued, one pair per application, no orphan rows, the
//! audit chain unbroken, and the instances' `/metrics` showing shared transactions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::x509::X509;
use serde_json::Value;
use tamga::digital_id;
use tamga::store::{ApplicationStatus, CertificateKind, CertificateStatus};

use crate::enroll::{body, claims, fresh_iin, Env};
use crate::support::{csr_in_process, postgres_url, run, tamga, text, GroupCommits};

/// Client threads per instance.
const CLIENTS: usize = 16;
/// Submissions each client makes.
const ROUNDS: usize = 12;

/// A PKCS#10 request (PEM) for a new EC P-256 key.
fn ec_csr() -> String {
    csr_in_process("ec").0
}

/// One request as the portal sends it: a consent token and the body.
#[derive(Clone)]
struct Submission {
    token: String,
    body: Value,
}

/// What one round of a client pair sends, the instance A's half and B's half at once.
enum Job {
    /// Two unrelated applications, one to each.
    Apart(Submission, Submission),
    /// The very same token and body to both: one application, whoever wins.
    SameToken(Submission),
    /// Two holders' tokens whose applications carry the same AUTH key: one certificate.
    SameKey(Submission, Submission),
}

impl Job {
    fn new(key: &PKey<openssl::pkey::Private>, round: usize) -> Job {
        let submission = |auth: &str| {
            let iin = fresh_iin();
            Submission {
                token: digital_id::mint_es256(key, &claims(&iin)).unwrap(),
                body: body(auth, &ec_csr(), None),
            }
        };
        match round % 4 {
            1 => Job::SameToken(submission(&ec_csr())),
            3 => {
                let auth = ec_csr();
                Job::SameKey(submission(&auth), submission(&auth))
            }
            _ => Job::Apart(submission(&ec_csr()), submission(&ec_csr())),
        }
    }

    /// The applications it makes.
    fn applications(&self) -> usize {
        match self {
            Job::Apart(..) => 2,
            Job::SameToken(_) | Job::SameKey(..) => 1,
        }
    }

    /// The submission instance `side` (0: A, 1: B) gets.
    fn half(&self, side: usize) -> &Submission {
        match (self, side) {
            (Job::Apart(a, _) | Job::SameKey(a, _), 0) => a,
            (Job::Apart(_, b) | Job::SameKey(_, b), _) => b,
            (Job::SameToken(s), _) => s,
        }
    }
}

/// An answer: the status and the JSON body.
type Answer = (u16, Value);

/// Send `submission` to `base`; any failure to get an answer fails the test (nothing is
/// killed here, and the instances must keep up).
fn send(http: &reqwest::blocking::Client, base: &str, submission: &Submission) -> Answer {
    let resp = http
        .post(format!("{base}/api/v1/applications"))
        .bearer_auth(&submission.token)
        .json(&submission.body)
        .send()
        .unwrap_or_else(|e| panic!("{base}: no answer: {e}"));
    let status = resp.status().as_u16();
    let v: Value = resp.json().unwrap();
    (status, v)
}

/// The certificates of an issued answer: serial → PEM.
fn certificates_of(v: &Value) -> Vec<(String, String)> {
    assert_eq!(v["status"], "issued", "{v}");
    let certs: Vec<(String, String)> = v["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| {
            (
                c["serial"].as_str().unwrap().to_owned(),
                c["pem"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let kinds: Vec<&str> = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["auth", "sign"], "{v}");
    certs
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, hex.
fn spki_sha256(der: &[u8]) -> String {
    let x = X509::from_der(der).unwrap();
    hex::encode(openssl::sha::sha256(
        &x.public_key().unwrap().public_key_to_der().unwrap(),
    ))
}

#[test]
fn two_instances_under_load_with_conflicts_on_postgres() {
    let test = "two_instances_under_load_with_conflicts_on_postgres";
    let Some(admin) = postgres_url(test) else {
        return;
    };
    let started = Instant::now();
    // The clients stand for the portal, which the per-address flood guard does not count.
    let env_vars = [("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "0")];
    let a = Env::postgres_with(&admin, &env_vars);
    let (_dir_b, b) = a.second_instance(&env_vars);
    let bases = [a.server.base.clone(), b.base.clone()];
    let key =
        digital_id::read_signing_key(&a.dir().join("certs-dev/digital_id_dev.key.pem")).unwrap();
    // Everything is made beforehand, so that the clients keep both instances busy.
    let jobs: Vec<Vec<Job>> = (0..CLIENTS)
        .map(|_| (0..ROUNDS).map(|round| Job::new(&key, round)).collect())
        .collect();
    let before = [
        GroupCommits::scrape(&bases[0]).expect("metrics of A"),
        GroupCommits::scrape(&bases[1]).expect("metrics of B"),
    ];

    // Client pair `c`: one thread for each instance; before each round both wait for the
    // other, so that the halves of a round, conflicts included, arrive together.
    // answers[c][round][side]
    let answers: Vec<Vec<[Answer; 2]>> = std::thread::scope(|scope| {
        let pairs: Vec<_> = jobs
            .iter()
            .map(|rounds| {
                let barrier = Arc::new(Barrier::new(2));
                let sides: Vec<_> = (0..2)
                    .map(|side| {
                        let (barrier, base) = (Arc::clone(&barrier), &bases[side]);
                        scope.spawn(move || {
                            let http = reqwest::blocking::Client::builder()
                                .timeout(Duration::from_secs(30))
                                .build()
                                .unwrap();
                            rounds
                                .iter()
                                .map(|job| {
                                    barrier.wait();
                                    send(&http, base, job.half(side))
                                })
                                .collect::<Vec<Answer>>()
                        })
                    })
                    .collect();
                sides
            })
            .collect();
        pairs
            .into_iter()
            .map(|sides| {
                let mut halves = sides.into_iter().map(|h| h.join().unwrap());
                let (on_a, on_b) = (halves.next().unwrap(), halves.next().unwrap());
                on_a.into_iter().zip(on_b).map(|(x, y)| [x, y]).collect()
            })
            .collect()
    });
    let load_took = started.elapsed();
    let after = [
        GroupCommits::scrape(&bases[0]).expect("metrics of A"),
        GroupCommits::scrape(&bases[1]).expect("metrics of B"),
    ];

    // What the clients hold: application id → (its certificates, serial → PEM), from the
    // answers, checked round by round.
    let mut held: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut tally = BTreeMap::<&str, u32>::new();
    // Losers of a race answered with anything but a precise code: reported once every
    // invariant of the database has been checked.
    let mut imprecise: Vec<String> = Vec::new();
    let mut hold = |v: &Value| {
        let id = v["id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
        let certs = certificates_of(v);
        if let Some(before) = held.insert(id.clone(), certs.clone()) {
            assert_eq!(before, certs, "{id} answered with other certificates");
        }
        id
    };
    for (c, rounds) in answers.iter().enumerate() {
        for (round, (job, pair)) in jobs[c].iter().zip(rounds).enumerate() {
            let what = format!("client pair {c}, round {round}: {pair:?}");
            match job {
                Job::Apart(..) => {
                    for (status, v) in pair {
                        if *status == 201 {
                            hold(v);
                            *tally.entry("apart: 201").or_default() += 1;
                        } else {
                            imprecise.push(format!("an application of its own: {status} {v}"));
                        }
                    }
                }
                Job::SameToken(_) => {
                    // Never two 201s for one token; the other is the repeat path's 200 with
                    // the same application and certificates, or a 409 with
                    // `consent_token_replayed` (or `key_reused`: the same keys).
                    let created = pair.iter().filter(|(s, _)| *s == 201).count();
                    assert!(created <= 1, "one 201 for one token: {what}");
                    let mut ids = HashSet::new();
                    for (status, v) in pair {
                        match (status, v["code"].as_str()) {
                            (200 | 201, _) => {
                                ids.insert(hold(v));
                            }
                            (409, Some(code @ ("consent_token_replayed" | "key_reused"))) => {
                                *tally.entry(code).or_default() += 1;
                            }
                            _ => imprecise.push(format!("a token race: {status} {v}")),
                        }
                    }
                    assert!(ids.len() <= 1, "one application for one token: {what}");
                    let key = match [pair[0].0, pair[1].0] {
                        [201, 200] | [200, 201] => "same token: 201 and 200",
                        [201, 409] | [409, 201] => "same token: 201 and 409",
                        _ => "same token: other",
                    };
                    *tally.entry(key).or_default() += 1;
                }
                Job::SameKey(..) => {
                    let created: Vec<&Answer> = pair.iter().filter(|(s, _)| *s == 201).collect();
                    assert_eq!(created.len(), 1, "one 201 for one key: {what}");
                    hold(&created[0].1);
                    let (status, v) = pair.iter().find(|(s, _)| *s != 201).unwrap();
                    if *status != 409 || v["code"] != "key_reused" {
                        imprecise.push(format!("the loser of a key race: {status} {v}"));
                        continue;
                    }
                    *tally.entry("same key: 201 and 409 key_reused").or_default() += 1;
                }
            }
        }
    }
    for answer in &imprecise {
        eprintln!("imprecise answer in {answer}");
    }
    let groups = [
        GroupCommits {
            commits: after[0].commits - before[0].commits,
            writes: after[0].writes - before[0].writes,
        },
        GroupCommits {
            commits: after[1].commits - before[1].commits,
            writes: after[1].writes - before[1].writes,
        },
    ];
    eprintln!(
        "two instances under load: {} applications in {load_took:?}; {tally:?}; {} imprecise answers; A: {} writes in {} commits ({:.2} per commit), B: {} writes in {} commits ({:.2} per commit)",
        held.len(),
        imprecise.len(),
        groups[0].writes,
        groups[0].commits,
        groups[0].per_commit(),
        groups[1].writes,
        groups[1].commits,
        groups[1].per_commit()
    );

    // The database: exactly the applications the clients hold, each with its one pair, as
    // the clients received it.
    let store = &a.store;
    let apps = store
        .read(|tx| tx.list_applications(None, None, 100_000))
        .unwrap();
    let expected: usize = jobs.iter().flatten().map(Job::applications).sum();
    let mut jtis = HashSet::new();
    let mut keys = HashSet::new();
    let mut rows = 0;
    for app in &apps {
        assert!(
            jtis.insert(app.consent_jti.clone()),
            "one application per consent token: {}",
            app.consent_jti
        );
        let Some(received) = held.get(&app.id) else {
            imprecise.push(format!(
                "{} is stored ({:?}), and no client holds it",
                app.id, app.status
            ));
            continue;
        };
        assert_eq!(app.status, ApplicationStatus::Issued, "{}", app.id);
        let certs = store
            .read(|tx| tx.certificates_of_application(&app.id))
            .unwrap();
        rows += certs.len();
        let kinds: Vec<CertificateKind> = certs.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [CertificateKind::Auth, CertificateKind::Sign],
            "exactly one pair for {}",
            app.id
        );
        for (stored, (serial, pem)) in certs.iter().zip(received) {
            assert_eq!(&stored.serial, serial, "{}", app.id);
            assert_eq!(stored.status, CertificateStatus::Issued, "{serial}");
            assert!(stored.issued_at.is_some(), "{serial} recorded as issued");
            let der = X509::from_pem(pem.as_bytes()).unwrap().to_der().unwrap();
            assert_eq!(
                stored.der.as_deref(),
                Some(der.as_slice()),
                "{serial}: the received certificate is byte for byte the stored one"
            );
            let key = spki_sha256(&der);
            assert_eq!(stored.spki_sha256, key, "{serial}");
            assert!(keys.insert(key), "one certificate per public key: {serial}");
        }
    }
    let counts = a.counts();
    let unheld = apps.iter().filter(|a| !held.contains_key(&a.id));
    let unheld_rows: usize = unheld
        .map(|app| {
            store
                .read(|tx| tx.certificates_of_application(&app.id))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        counts.certificates,
        (rows + unheld_rows) as i64,
        "no certificate row without its application"
    );
    assert_eq!(counts.applications, apps.len() as i64);
    assert_eq!(
        counts.used_consent_tokens,
        apps.len() as i64,
        "one used consent token per application, none used by a refused request"
    );
    let out = run(tamga(a.dir())
        .env("TAMGA_DATABASE__URL", &a.db.as_ref().unwrap().url)
        .args(["audit", "verify"]));
    assert!(out.status.success(), "{}", text(&out));

    // Both instances shared transactions between the applications they served.
    for (name, g) in ["A", "B"].iter().zip(&groups) {
        assert!(g.commits > 0 && g.writes >= g.commits, "{name}: {g:?}");
    }
    assert!(
        groups.iter().any(|g| g.per_commit() > 1.0),
        "batching must happen under this load: {groups:?}"
    );
    eprintln!("two instances under load: {:?} in all", started.elapsed());
    assert!(
        imprecise.is_empty(),
        "every request of a race gets a precise answer, and every application reaches a client ({} did not): {imprecise:#?}",
        imprecise.len()
    );
    assert_eq!(held.len(), expected, "applications the clients hold");
    assert_eq!(apps.len(), held.len(), "applications stored");
}
