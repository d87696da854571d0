use super::*;
use crate::net::LinkChange;
use crate::protocol::{closes_connection, error_reply_text};

fn parse(words: &[&str]) -> Result<Request> {
    let frame = words.iter().map(|word| word.as_bytes().to_vec()).collect();
    Request::parse(frame, &Limits::default())
}

fn parsed(words: &[&str]) -> Request {
    parse(words).unwrap_or_else(|error| panic!("{words:?}: {error}"))
}

fn error_text(words: &[&str]) -> String {
    match parse(words) {
        Ok(request) => panic!("{words:?} parsed as {request:?}"),
        Err(error) => {
            assert!(matches!(error, Error::Command(_)), "{error:?}");
            assert!(!closes_connection(&error));
            error_reply_text(&error)
        }
    }
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[test]
fn redis_commands_parse_case_insensitively() {
    assert_eq!(parsed(&["ping"]), Request::Ping { message: None });
    assert_eq!(
        parsed(&["PiNg", "hi"]),
        Request::Ping {
            message: Some(bytes("hi"))
        }
    );
    assert_eq!(parsed(&["GET", "k"]), Request::Get { key: bytes("k") });
    assert_eq!(
        parsed(&["set", "k", "v"]),
        Request::Set {
            key: bytes("k"),
            value: bytes("v")
        }
    );
    assert_eq!(
        parsed(&["DEL", "a", "b"]),
        Request::Delete {
            keys: vec![bytes("a"), bytes("b")]
        }
    );
    assert_eq!(
        parsed(&["mget", "a"]),
        Request::MultiGet {
            keys: vec![bytes("a")]
        }
    );
    assert_eq!(
        parsed(&["EXISTS", "a"]),
        Request::Exists {
            keys: vec![bytes("a")]
        }
    );
    assert_eq!(parsed(&["INFO"]), Request::Info { sections: vec![] });
    assert_eq!(parsed(&["COMMAND"]), Request::Command(CommandQuery::All));
    assert_eq!(
        parsed(&["command", "docs"]),
        Request::Command(CommandQuery::Docs { names: vec![] })
    );
    assert_eq!(
        parsed(&["COMMAND", "COUNT"]),
        Request::Command(CommandQuery::Count)
    );
    assert_eq!(
        parsed(&["CONFIG", "GET", "save"]),
        Request::ConfigGet {
            patterns: vec!["save".into()]
        }
    );
    assert_eq!(
        parsed(&["CLIENT", "SETINFO", "lib-name", "redis-py"]),
        Request::Client(ClientRequest::SetInfo {
            attribute: "LIB-NAME".into(),
            value: bytes("redis-py")
        })
    );
    assert_eq!(
        parsed(&["client", "setname", "bench"]),
        Request::Client(ClientRequest::SetName {
            name: bytes("bench")
        })
    );
    assert_eq!(
        parsed(&["CLIENT", "GETNAME"]),
        Request::Client(ClientRequest::GetName)
    );
    assert_eq!(
        parsed(&["CLIENT", "ID"]),
        Request::Client(ClientRequest::Id)
    );
    assert_eq!(parsed(&["SELECT", "0"]), Request::Select);
    assert_eq!(parsed(&["QUIT"]), Request::Quit);
    assert_eq!(
        parsed(&["AUTH", "secret"]),
        Request::Auth(Credentials {
            username: None,
            password: bytes("secret")
        })
    );
    assert_eq!(
        parsed(&["AUTH", "user", "secret"]),
        Request::Auth(Credentials {
            username: Some(bytes("user")),
            password: bytes("secret")
        })
    );
    assert_eq!(
        parsed(&["HELLO", "2", "AUTH", "u", "p", "SETNAME", "n"]),
        Request::Hello {
            protocol_version: Some(2),
            credentials: Some(Credentials {
                username: Some(bytes("u")),
                password: bytes("p")
            }),
            client_name: Some(bytes("n")),
        }
    );
}

#[test]
fn arity_errors_match_redis() {
    let cases: &[(&[&str], &str)] = &[
        (&["GET"], "get"),
        (&["get", "a", "b"], "get"),
        (&["SET", "k"], "set"),
        (&["PING", "a", "b"], "ping"),
        (&["ECHO"], "echo"),
        (&["DEL"], "del"),
        (&["MGET"], "mget"),
        (&["EXISTS"], "exists"),
        (&["SELECT"], "select"),
        (&["CONFIG"], "config"),
        (&["CONFIG", "GET"], "config|get"),
        (&["CLIENT", "SETNAME"], "client|setname"),
        (&["CLIENT", "SETINFO", "LIB-NAME"], "client|setinfo"),
        (&["COMMAND", "COUNT", "x"], "command|count"),
        (&["AUTH"], "auth"),
        (&["KV.GET"], "kv.get"),
        (&["KV.PUT", "k"], "kv.put"),
        (&["KV.SCAN", "a"], "kv.scan"),
        (&["LINK.SET", "a", "b"], "link.set"),
        (&["LINK.GET", "x"], "link.get"),
        (&["CONSISTENCY"], "consistency"),
    ];
    for (words, name) in cases {
        assert_eq!(
            error_text(words),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{words:?}"
        );
    }
}

#[test]
fn unknown_commands_match_redis() {
    assert_eq!(
        error_text(&["foo"]),
        "ERR unknown command 'foo', with args beginning with: "
    );
    assert_eq!(
        error_text(&["Foo", "a", "b c"]),
        "ERR unknown command 'Foo', with args beginning with: 'a' 'b c' "
    );
    let long = "x".repeat(300);
    let text = error_text(&["foo", &long, "next"]);
    assert_eq!(
        text,
        format!(
            "ERR unknown command 'foo', with args beginning with: '{}' ",
            "x".repeat(128)
        )
    );
    assert!(!error_text(&["foo", "a\r\nb"]).contains('\n'));
    assert_eq!(
        error_text(&["CONFIG", "nope"]),
        "ERR unknown subcommand 'nope'. Try CONFIG HELP."
    );
    assert_eq!(
        error_text(&["CLIENT", "KILL"]),
        "ERR unknown subcommand 'KILL'. Try CLIENT HELP."
    );
    assert_eq!(
        Request::parse(vec![], &Limits::default()).map_err(|error| error_reply_text(&error)),
        Err("ERR empty command".into())
    );
}

#[test]
fn refused_options_and_values_are_clear() {
    assert_eq!(
        error_text(&["SET", "k", "v", "ex", "10"]),
        "ERR SET option 'ex' is not supported by this store"
    );
    for option in ["PX", "NX", "XX", "KEEPTTL", "GET", "EXAT", "PXAT"] {
        assert!(error_text(&["SET", "k", "v", option]).contains("not supported"));
    }
    assert_eq!(error_text(&["SET", "k", "v", "bogus"]), "ERR syntax error");
    assert_eq!(error_text(&["SELECT", "1"]), "ERR DB index is out of range");
    assert_eq!(
        error_text(&["SELECT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        error_text(&["HELLO", "3"]),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        error_text(&["HELLO", "two"]),
        "ERR Protocol version is not an integer or out of range"
    );
    assert_eq!(
        error_text(&["HELLO", "2", "AUTH", "u"]),
        "ERR Syntax error in HELLO option 'AUTH'"
    );
    assert_eq!(error_text(&["AUTH", "a", "b", "c"]), "ERR syntax error");
    assert!(error_text(&["CLIENT", "SETNAME", "a b"]).contains("cannot contain spaces"));
    assert!(error_text(&["CONFIG", "SET", "save", ""]).contains("not supported"));
}

#[test]
fn consistency_command_sets_levels_and_counts() {
    let cases: &[(&[&str], Consistency)] = &[
        (&["CONSISTENCY", "one"], Consistency::One),
        (&["CONSISTENCY", "QUORUM"], Consistency::Quorum),
        (&["CONSISTENCY", "All"], Consistency::All),
        (&["CONSISTENCY", "LOCAL_QUORUM"], Consistency::LocalQuorum),
        (&["CONSISTENCY", "EACH_QUORUM"], Consistency::EachQuorum),
        (
            &["CONSISTENCY", "R", "2", "W", "3"],
            Consistency::Counts {
                read: Some(2),
                write: Some(3),
            },
        ),
        (
            &["CONSISTENCY", "w", "1"],
            Consistency::Counts {
                read: None,
                write: Some(1),
            },
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(
            parsed(words),
            Request::SetConsistency(*expected),
            "{words:?}"
        );
    }
    for words in [
        &["CONSISTENCY", "SOME"][..],
        &["CONSISTENCY", "R"],
        &["CONSISTENCY", "R", "0"],
        &["CONSISTENCY", "R", "65"],
        &["CONSISTENCY", "R", "x"],
        &["CONSISTENCY", "R", "1", "R", "2"],
        &["CONSISTENCY", "ONE", "R"],
    ] {
        assert!(error_text(words).starts_with("ERR "), "{words:?}");
    }
}

#[test]
fn versioned_commands_parse_their_options() {
    assert_eq!(
        parsed(&["kv.get", "k", "cl", "local_quorum"]),
        Request::KvGet {
            key: bytes("k"),
            consistency: Some(Consistency::LocalQuorum)
        }
    );
    assert_eq!(
        parsed(&["KV.GET", "k", "R", "2"]),
        Request::KvGet {
            key: bytes("k"),
            consistency: Some(Consistency::Counts {
                read: Some(2),
                write: None
            })
        }
    );
    assert_eq!(
        parsed(&["KV.PUT", "k", "v", "CONTEXT", "c", "W", "3"]),
        Request::KvPut {
            key: bytes("k"),
            value: bytes("v"),
            context: Some(bytes("c")),
            consistency: Some(Consistency::Counts {
                read: None,
                write: Some(3)
            })
        }
    );
    assert_eq!(
        parsed(&["KV.DEL", "k", "CL", "ALL", "CONTEXT", "c"]),
        Request::KvDelete {
            key: bytes("k"),
            context: Some(bytes("c")),
            consistency: Some(Consistency::All)
        }
    );
    assert_eq!(
        parsed(&["KV.SCAN", "a", "100", "END", "z", "CL", "ONE"]),
        Request::KvScan {
            start_key: bytes("a"),
            count: 100,
            end_key: Some(bytes("z")),
            consistency: Some(Consistency::One)
        }
    );
    assert_eq!(
        parsed(&["KV.SCAN", "a", "1"]),
        Request::KvScan {
            start_key: bytes("a"),
            count: 1,
            end_key: None,
            consistency: None
        }
    );
    let refused: &[(&[&str], &str)] = &[
        (
            &["KV.GET", "k", "W", "2"],
            "unknown option 'W' for 'kv.get'",
        ),
        (&["KV.GET", "k", "CONTEXT", "c"], "unknown option"),
        (&["KV.PUT", "k", "v", "R", "2"], "unknown option 'R'"),
        (&["KV.PUT", "k", "v", "END", "z"], "unknown option"),
        (&["KV.GET", "k", "CL"], "option 'CL' needs a value"),
        (
            &["KV.GET", "k", "CL", "ONE", "R", "1"],
            "both set the consistency",
        ),
        (
            &["KV.GET", "k", "CL", "ONE", "CL", "ALL"],
            "both set the consistency",
        ),
        (
            &["KV.DEL", "k", "CONTEXT", "a", "CONTEXT", "b"],
            "given twice",
        ),
        (
            &["KV.GET", "k", "CL", "MOST"],
            "unknown consistency level 'MOST'",
        ),
        (&["KV.PUT", "k", "v", "W", "0"], "replica count must be"),
        (&["KV.SCAN", "a", "0"], "count must be"),
        (
            &["KV.SCAN", "a", "10001"],
            "count must be an integer from 1 to 10000",
        ),
        (&["KV.SCAN", "a", "-1"], "count must be"),
        (&["KV.SCAN", "a", "5", "END"], "needs a value"),
    ];
    for (words, expected) in refused {
        let text = error_text(words);
        assert!(text.starts_with("ERR syntax error") || text.starts_with("ERR "));
        assert!(text.contains(expected), "{words:?}: {text}");
    }
}

#[test]
fn admin_commands_parse_link_changes() {
    assert_eq!(parsed(&["cluster.topology"]), Request::ClusterTopology);
    assert_eq!(parsed(&["CLUSTER.MEMBERS"]), Request::ClusterMembers);
    assert_eq!(parsed(&["LINK.GET"]), Request::LinkGet);
    assert_eq!(
        parsed(&["link.reset", "local"]),
        Request::LinkUpdate {
            change: LinkChange::Reset,
            local: true
        }
    );
    assert_eq!(
        parsed(&["LINK.SET", "dc1", "dc2", "exp(5)"]).name(),
        "link.set"
    );
    assert_eq!(parsed(&["LINK.HEAL"]).name(), "link.heal");
    assert_eq!(
        parsed(&["LINK.PARTITION", "a", "b"]).name(),
        "link.partition"
    );
    let frame = vec![bytes("LINK.SET"), vec![0xff], bytes("dc2"), bytes("x")];
    assert!(Request::parse(frame, &Limits::default()).is_err());
    let text = error_text(&["LINK.RESET", "now"]);
    assert!(text.contains("'now'"), "{text}");
    assert!(error_text(&["LINK.PARTITION", "a"]).contains("wrong number of arguments"));
}

#[test]
fn names_are_canonical_and_binary_keys_survive() {
    let frame = vec![bytes("get"), vec![0, 0xff, b'\r', b'\n']];
    let request = Request::parse(frame, &Limits::default()).unwrap();
    assert_eq!(request.name(), "get");
    assert_eq!(
        request,
        Request::Get {
            key: vec![0, 0xff, b'\r', b'\n']
        }
    );
    assert_eq!(parsed(&["kv.scan", "a", "2"]).name(), "kv.scan");
}

#[test]
fn consistency_serialises_by_level_name() {
    let described: Vec<String> = [
        Consistency::One,
        Consistency::LocalQuorum,
        Consistency::Counts {
            read: Some(2),
            write: Some(1),
        },
    ]
    .iter()
    .map(Consistency::describe)
    .collect();
    assert_eq!(described, ["ONE", "LOCAL_QUORUM", "R 2 W 1"]);
    let json = serde_json::to_string(&Consistency::LocalQuorum).unwrap();
    assert_eq!(json, "\"LOCAL_QUORUM\"");
    let counts: Consistency =
        serde_json::from_str(r#"{"COUNTS":{"read":2,"write":null}}"#).unwrap();
    assert_eq!(
        counts,
        Consistency::Counts {
            read: Some(2),
            write: None
        }
    );
    let limits: Limits = serde_json::from_str(r#"{"scan_count_max":5}"#).unwrap();
    assert_eq!(limits.scan_count_max, 5);
    assert_eq!(
        limits.bulk_length_bytes_max,
        Limits::default().bulk_length_bytes_max
    );
}
