//! People at HQ and the audit log on both backends: adding users checks every field and writes
//! nothing when it refuses, signing in locks an account after repeated wrong passwords, every
//! change and sign-in is in the audit log, and the audit log refuses to be changed.
#![allow(clippy::unwrap_used)]

mod backends;

use hq::db::Db;
use hq::identity::{
    Actor, IdentityError, LOCKOUT_MS, NewUser, Role, SIGN_IN_ATTEMPTS, add_user, audit_log, sign_in,
};

use backends::{on_postgres, on_sqlite};

const NOW: i64 = 1_796_000_000_000;

fn user(name: &str, role: Role, stores: &[&str]) -> NewUser {
    NewUser {
        name: name.into(),
        display_name: format!("{name} display"),
        role,
        stores: stores.iter().map(|s| (*s).to_owned()).collect(),
        password: "correct horse battery".into(),
    }
}

async fn users_are_checked_signed_in_locked_out_and_audited(db: &Db) {
    let store = domain::StoreId::parse("vienna-01").unwrap();
    hq::add_store(db, &store, "Wien").await.unwrap();

    // Refusals name the field and write nothing.
    let refused = [
        (user("Bad Name!", Role::Admin, &[]), "name"),
        (
            NewUser {
                password: "short".into(),
                ..user("anna", Role::Admin, &[])
            },
            "password",
        ),
        (user("anna", Role::StoreManager, &[]), "stores"),
        (user("anna", Role::StoreManager, &["graz-01"]), "stores"),
        (user("anna", Role::Finance, &["vienna-01"]), "stores"),
        (
            NewUser {
                display_name: "  ".into(),
                ..user("anna", Role::Admin, &[])
            },
            "display_name",
        ),
    ];
    for (u, field) in refused {
        match add_user(db, &u, &Actor::Cli, NOW).await {
            Err(IdentityError::Invalid { field: f, .. }) => assert_eq!(f, field, "{u:?}"),
            other => panic!("{u:?}: {other:?}"),
        }
    }
    assert!(audit_log(db, None, None, 100).await.unwrap().is_empty());

    let admin = add_user(db, &user("Admin", Role::Admin, &[]), &Actor::Cli, NOW)
        .await
        .unwrap();
    assert_eq!(admin.name, "admin");
    let manager = add_user(
        db,
        &user("maria", Role::StoreManager, &["vienna-01"]),
        &Actor::User("admin".into()),
        NOW + 1,
    )
    .await
    .unwrap();
    assert_eq!(manager.stores, ["vienna-01"]);
    assert!(matches!(
        add_user(db, &user("ADMIN", Role::Auditor, &[]), &Actor::Cli, NOW).await,
        Err(IdentityError::UserExists(name)) if name == "admin"
    ));

    // Signing in: the right password, a wrong one (with the tries left), an unknown name.
    let signed = sign_in(
        db,
        " Maria ",
        "correct horse battery",
        Some("10.0.0.7"),
        NOW + 2,
    )
    .await
    .unwrap();
    assert_eq!(signed, manager);
    assert!(matches!(
        sign_in(db, "maria", "wrong", None, NOW + 3).await,
        Err(IdentityError::WrongPassword { attempts_left: Some(n) }) if n == SIGN_IN_ATTEMPTS - 1
    ));
    assert!(matches!(
        sign_in(db, "nobody", "correct horse battery", None, NOW + 3).await,
        Err(IdentityError::WrongPassword {
            attempts_left: None
        })
    ));
    // A success clears the count; then enough wrong passwords lock the account, even to the
    // right password, until the lockout ends.
    sign_in(db, "maria", "correct horse battery", None, NOW + 4)
        .await
        .unwrap();
    for i in 0..SIGN_IN_ATTEMPTS {
        let e = sign_in(db, "maria", "wrong", None, NOW + 5 + i)
            .await
            .unwrap_err();
        if i + 1 < SIGN_IN_ATTEMPTS {
            assert!(
                matches!(e, IdentityError::WrongPassword { .. }),
                "{i}: {e:?}"
            );
        } else {
            assert!(matches!(e, IdentityError::Locked { .. }), "{i}: {e:?}");
        }
    }
    let locked_at = NOW + 4 + SIGN_IN_ATTEMPTS;
    assert!(matches!(
        sign_in(
            db,
            "maria",
            "correct horse battery",
            None,
            locked_at + 60_000
        )
        .await,
        Err(IdentityError::Locked { .. })
    ));
    sign_in(
        db,
        "maria",
        "correct horse battery",
        None,
        locked_at + LOCKOUT_MS + 1,
    )
    .await
    .unwrap();

    // The audit log holds both additions and every attempt on a known account, newest first.
    let log = audit_log(db, None, None, 100).await.unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    let mut expected = vec![
        ("cli", "user.add"),
        ("user:admin", "user.add"),
        ("user:maria", "sign-in"),
        ("user:maria", "sign-in.refused"),
        ("user:maria", "sign-in"),
    ];
    expected.extend((0..SIGN_IN_ATTEMPTS).map(|_| ("user:maria", "sign-in.refused")));
    expected.extend([("user:maria", "sign-in.refused"), ("user:maria", "sign-in")]);
    assert_eq!(actions, expected);
    let added = &log[log.len() - 2];
    assert_eq!(added.target.as_deref(), Some("user:maria"));
    let after: serde_json::Value = serde_json::from_str(added.after.as_deref().unwrap()).unwrap();
    assert_eq!(after["role"], "store-manager");
    assert_eq!(after["stores"], serde_json::json!(["vienna-01"]));
    assert!(!added.after.as_deref().unwrap().contains("correct horse"));
    assert_eq!(log[log.len() - 3].source.as_deref(), Some("10.0.0.7"));
    // Paging and the actor filter.
    let page = audit_log(db, None, Some(log[1].id), 2).await.unwrap();
    assert_eq!(page, log[2..4]);
    assert_eq!(
        audit_log(db, Some("cli"), None, 100).await.unwrap().len(),
        1
    );

    // Nobody changes or removes what the audit log holds, not even with the database's keys.
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let e = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(audit_log(db, None, None, 100).await.unwrap(), log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_checked_signed_in_locked_out_and_audited_on_sqlite() {
    on_sqlite(|db| async move { users_are_checked_signed_in_locked_out_and_audited(&db).await })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_checked_signed_in_locked_out_and_audited_on_postgres() {
    on_postgres(|db| async move { users_are_checked_signed_in_locked_out_and_audited(&db).await })
        .await;
}

/// API keys: the secret is shown once and kept only as a hash, a key works for its scopes
/// until it is revoked or, once rotated, until its overlap ends; every step is audited, and
/// bad input writes nothing.
async fn api_keys_are_hashed_rotated_with_an_overlap_revoked_and_audited(db: &Db) {
    use hq::identity::{
        KEY_PREFIX, Scope, api_keys, create_api_key, key_for_secret, revoke_api_key, rotate_api_key,
    };
    let cli = Actor::Cli;
    for (name, scopes, field) in [
        ("", vec![Scope::StockRead], "name"),
        ("erp", vec![], "scopes"),
    ] {
        match create_api_key(db, &cli, name, &scopes, NOW).await {
            Err(IdentityError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{name:?} {scopes:?}: {other:?}"),
        }
    }
    assert!(api_keys(db).await.unwrap().is_empty());
    assert!(matches!(
        Scope::parse("stock:write"),
        Err(IdentityError::Invalid {
            field: "scopes",
            ..
        })
    ));

    let made = create_api_key(
        db,
        &cli,
        "ERP nightly export",
        &[Scope::ReportsRead, Scope::StockRead, Scope::StockRead],
        NOW,
    )
    .await
    .unwrap();
    assert!(made.secret.starts_with(KEY_PREFIX), "{}", made.secret);
    assert_eq!(made.key.scopes, [Scope::StockRead, Scope::ReportsRead]);
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM api_keys")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&made.secret[KEY_PREFIX.len()..]));
    let found = key_for_secret(db, &made.secret, NOW).await.unwrap();
    assert_eq!(found.as_ref().map(|k| &k.id), Some(&made.key.id));
    // The secret with its last hex digit changed (to another digit, whatever it was).
    let last = if made.secret.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &made.secret[..made.secret.len() - 1]);
    assert_eq!(key_for_secret(db, &wrong, NOW).await.unwrap(), None);

    // Rotated with a minute's overlap: both work within it, only the new one after.
    let rotated = rotate_api_key(db, &cli, &made.key.id, 60_000, NOW + 1_000)
        .await
        .unwrap();
    assert_ne!(rotated.key.id, made.key.id);
    assert_eq!(rotated.key.scopes, made.key.scopes);
    assert!(
        key_for_secret(db, &made.secret, NOW + 60_999)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        key_for_secret(db, &made.secret, NOW + 61_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        key_for_secret(db, &rotated.secret, NOW + 61_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        rotate_api_key(db, &cli, &made.key.id, 0, NOW + 61_000).await,
        Err(IdentityError::KeyNotLive(_))
    ));

    // Revoked: refused at once.
    revoke_api_key(db, &cli, &rotated.key.id, NOW + 62_000)
        .await
        .unwrap();
    assert!(
        key_for_secret(db, &rotated.secret, NOW + 62_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        revoke_api_key(db, &cli, &rotated.key.id, NOW + 63_000).await,
        Err(IdentityError::KeyNotLive(_))
    ));
    assert!(matches!(
        revoke_api_key(db, &cli, "key-000000000000", NOW).await,
        Err(IdentityError::UnknownKey(_))
    ));
    let listed = api_keys(db).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| !k.live(NOW + 62_000)));

    let log = audit_log(db, None, None, 100).await.unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.target.as_deref().unwrap_or("")))
        .collect();
    let (old, new) = (
        format!("key:{}", made.key.id),
        format!("key:{}", rotated.key.id),
    );
    assert_eq!(
        actions,
        [
            ("key.create", old.as_str()),
            ("key.rotate", new.as_str()),
            ("key.expire", old.as_str()),
            ("key.revoke", new.as_str()),
        ]
    );
    assert!(log.iter().all(|e| e.actor == "cli"));
    assert!(
        log.iter()
            .all(|e| !e.after.as_deref().unwrap_or("").contains(KEY_PREFIX)),
        "no secret in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_hashed_rotated_with_an_overlap_revoked_and_audited_on_sqlite() {
    on_sqlite(|db| async move {
        api_keys_are_hashed_rotated_with_an_overlap_revoked_and_audited(&db).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_hashed_rotated_with_an_overlap_revoked_and_audited_on_postgres() {
    on_postgres(|db| async move {
        api_keys_are_hashed_rotated_with_an_overlap_revoked_and_audited(&db).await
    })
    .await;
}

/// Sign-ins while HQ writes other things at the same moment (keys made, the catalog published
/// and indexed): every sign-in is answered, none fails because another writer held the
/// database.
async fn sign_ins_beside_other_writes_all_succeed(db: &Db) {
    add_user(db, &user("ana", Role::Admin, &[]), &Actor::Cli, NOW)
        .await
        .unwrap();
    let seed: protocol::seed::SeedDto =
        serde_json::from_str(&std::fs::read_to_string(test_support::demo_seed_path()).unwrap())
            .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let signing = db.clone();
        tasks.spawn(async move {
            sign_in(
                &signing,
                "ana",
                "correct horse battery",
                Some("127.0.0.1"),
                NOW + i,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        });
        let db = db.clone();
        tasks.spawn(async move {
            hq::identity::create_api_key(
                &db,
                &Actor::Cli,
                &format!("key-{i}"),
                &[hq::identity::Scope::CatalogRead],
                NOW + i,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        });
    }
    {
        let db = db.clone();
        tasks.spawn(async move {
            hq::refdata::publish(&db, &seed, &[7; 32])
                .await
                .map_err(|e| e.to_string())?;
            hq::search::refresh(&db)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_beside_other_writes_all_succeed_on_sqlite() {
    on_sqlite(|db| async move { sign_ins_beside_other_writes_all_succeed(&db).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_beside_other_writes_all_succeed_on_postgres() {
    on_postgres(|db| async move { sign_ins_beside_other_writes_all_succeed(&db).await }).await;
}

/// Two HQ processes on one SQLite file (here two pools, each with its own write guard, as a
/// `kassa hq …` command beside a serving HQ): sign-ins on one and keys made on the other all
/// succeed, each write waiting for the other's lock instead of failing as "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_two_processes_on_one_sqlite_file_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = hq::db::sqlite_url(dir.path()).unwrap();
    let serving = hq::db::open(&url).await.unwrap();
    let command = hq::db::open(&url).await.unwrap();
    for name in ["ana", "ben"] {
        add_user(&serving, &user(name, Role::Admin, &[]), &Actor::Cli, NOW)
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        // A sign-in reads the account, then writes: on each side, beside the other's writes.
        for (db, name) in [(serving.clone(), "ana"), (command.clone(), "ben")] {
            tasks.spawn(async move {
                sign_in(&db, name, "correct horse battery", None, NOW + i)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        }
        let db = command.clone();
        tasks.spawn(async move {
            hq::identity::create_api_key(
                &db,
                &Actor::Cli,
                &format!("key-{i}"),
                &[hq::identity::Scope::CatalogRead],
                NOW + i,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
}
