//! The node steps of the Python tool's recorded session (`tests/fixtures/python/reference`,
//! steps 001–041: `select`, the host verbs, `tags`), replayed in order with our confctl from
//! the keyspace the Python sync wrote (its bytes, as `conftool-migrate` copies them): after
//! every step the pool values are the Python tool's, and stdout is its stdout, except where
//! MIGRATING.md says we differ on purpose; each such step says which difference.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::*;

/// What stdout must be.
enum Out {
    /// The Python tool's stdout, byte for byte.
    Same,
    /// The Python tool's lines, in any order (it lists v2 directories unsorted).
    SameLines,
    /// The Python tool's change lines (it prints its question on stdout, we on stderr).
    ChangeLines,
    /// Ours, where we differ on purpose.
    Ours(&'static str),
    /// Not compared here (another format on purpose; tested in its own module).
    Other,
    /// Nothing on stdout and no question: every selected object is `inactive` and a write
    /// by pattern leaves them alone (the Python tool asks, then writes them).
    LeftAlone,
}

struct Step {
    n: &'static str,
    args: &'static [&'static str],
    stdin: &'static str,
    code: i32,
    out: Out,
}

const VFE: &str = "dc=eqiad,cluster=cache_text,service=varnish-fe";
const NGINX_CP1001: &str = "dc=eqiad,cluster=cache_text,service=nginx,name=cp1001.eqiad.wmnet";

#[rustfmt::skip]
const STEPS: &[Step] = &[
    Step { n: "001", args: &["select", "name=cp1001.eqiad.wmnet", "get"], stdin: "", code: 0, out: Out::SameLines },
    Step { n: "002", args: &["select", NGINX_CP1001, "set/pooled=yes"], stdin: "", code: 0, out: Out::Same },
    // The pool's other node is inactive: below its depool threshold without the flag.
    Step { n: "003", args: &["select", NGINX_CP1001, "set/weight=10:pooled=no", "--allow-below-threshold"], stdin: "", code: 0, out: Out::SameLines },
    // A bad value: exit 2 here, 1 there; nothing written either way.
    Step { n: "004", args: &["select", NGINX_CP1001, "set/pooled=maybe"], stdin: "", code: 2, out: Out::Same },
    Step { n: "005", args: &["select", NGINX_CP1001, "set/weight=heavy"], stdin: "", code: 2, out: Out::Same },
    // Pooling inactive objects by a pattern needs --include-inactive here.
    Step { n: "006", args: &["select", "dc=eqiad,cluster=cache_text,service=varnish-fe", "set/pooled=yes", "--include-inactive"], stdin: "y\n", code: 0, out: Out::ChangeLines },
    // Our question is on stderr (Python's on stdout).
    Step { n: "007", args: &["select", "dc=eqiad,cluster=appservers", "set/pooled=yes", "--include-inactive"], stdin: "n\n", code: 1, out: Out::Ours("") },
    // Every object selected is inactive: a pattern leaves them alone, nothing to ask.
    Step { n: "008", args: &["--yaml", "select", "dc=eqiad,cluster=appservers", "set/weight=3"], stdin: "n\n", code: 0, out: Out::LeftAlone },
    Step { n: "009", args: &["select", "dc=eqiad,cluster=appservers", "set/weight=3"], stdin: "", code: 0, out: Out::LeftAlone },
    Step { n: "010", args: &["--host", "select", "name=cp1002.eqiad.wmnet", "set/weight=7"], stdin: "", code: 0, out: Out::SameLines },
    Step { n: "011", args: &["select", "name=nosuch", "get"], stdin: "", code: 0, out: Out::Same },
    Step { n: "012", args: &["select", "service=apache", "get"], stdin: "", code: 0, out: Out::SameLines },
    Step { n: "013", args: &["select", "dc=eqiad,service=(apache|nginx),name=.*1001.*", "get"], stdin: "", code: 0, out: Out::SameLines },
    // An unknown tag and a bad regex: exit 2 with a message (Python: tracebacks, exit 1).
    Step { n: "014", args: &["select", "foo=bar", "get"], stdin: "", code: 2, out: Out::Same },
    Step { n: "015", args: &["select", "name=[", "get"], stdin: "", code: 2, out: Out::Same },
    Step { n: "016", args: &["select", "name=mw1001.eqiad.wmnet", "set/pooled=yes"], stdin: "", code: 0, out: Out::Same },
    // Nothing changes: nothing written, said on stderr (Python rewrites, prints an empty line).
    Step { n: "017", args: &["select", "name=mw1001.eqiad.wmnet", "set/pooled=yes"], stdin: "", code: 0, out: Out::Ours("") },
    Step { n: "018", args: &["select", "name=mw1001.eqiad.wmnet", "get", "get"], stdin: "", code: 2, out: Out::Same },
    // --yaml prints YAML for a per-object get (Python ignores it there).
    Step { n: "019", args: &["--yaml", "select", "name=mw1001.eqiad.wmnet", "get"], stdin: "", code: 0, out: Out::Other },
    Step { n: "020", args: &["--quiet", "select", "name=mw1001.eqiad.wmnet", "set/weight=2"], stdin: "", code: 0, out: Out::Same },
    Step { n: "021", args: &["--reason", "a reason", "select", "name=mw1001.eqiad.wmnet", "set/weight=3"], stdin: "", code: 0, out: Out::Same },
    // The pool's only other node is inactive: below its depool threshold without the flag.
    Step { n: "022", args: &["depool", "--hostname", "mw1001.eqiad.wmnet", "--allow-below-threshold"], stdin: "", code: 0, out: Out::Same },
    // `pool` leaves inactive objects alone unless asked.
    Step { n: "023", args: &["pool", "--hostname", "mw2001.codfw.wmnet", "--service", "nginx", "--include-inactive"], stdin: "", code: 0, out: Out::Same },
    // Weights are 0 already: nothing written (Python rewrites and prints `0 => 0`).
    Step { n: "024", args: &["drain", "--hostname", "mw2001.codfw.wmnet"], stdin: "", code: 0, out: Out::Ours("") },
    Step { n: "025", args: &["decommission", "--hostname", "mw2002.codfw.wmnet"], stdin: "", code: 0, out: Out::Ours("") },
    // A host in no pool is bad input here, said once (Python: nothing, exit 0).
    Step { n: "026", args: &["pool", "--hostname", "nosuch.wmnet"], stdin: "", code: 2, out: Out::Same },
    // The host verbs are for nodes: a usage error here (Python: exit 1).
    Step { n: "027", args: &["--object-type", "widget", "pool", "--hostname", "w1"], stdin: "", code: 2, out: Out::Same },
    // `tags ... get all` prints the pool (Python 6.1.0 crashes).
    Step { n: "028", args: &["tags", VFE, "--action", "get", "all"], stdin: "", code: 0, out: Out::Other },
    Step { n: "030", args: &["tags", VFE, "--action", "get", "cp1003.eqiad.wmnet"], stdin: "", code: 0, out: Out::Same },
    // A name not in the pool is said (Python 6.1.0 crashes).
    Step { n: "031", args: &["tags", VFE, "--action", "get", "nosuch.eqiad.wmnet"], stdin: "", code: 0, out: Out::Ours("nosuch.eqiad.wmnet not found\n") },
    Step { n: "032", args: &["tags", VFE, "--action", "get", "re:cp100[12].*"], stdin: "", code: 0, out: Out::SameLines },
    Step { n: "033", args: &["tags", VFE, "--action", "set/pooled=no", "cp1003.eqiad.wmnet"], stdin: "", code: 0, out: Out::Same },
    // `all` and a regex over half the pool ask; no answer, nothing written (Python refuses
    // without a terminal, exit 1).
    Step { n: "034", args: &["tags", VFE, "--action", "set/weight=1", "all"], stdin: "", code: 1, out: Out::Ours("") },
    Step { n: "035", args: &["tags", VFE, "--action", "set/weight=1", "re:cp.*"], stdin: "", code: 1, out: Out::Ours("") },
    // Incomplete tag lists: exit 2 (Python: 1).
    Step { n: "036", args: &["tags", "dc=eqiad,cluster=cache_text", "--action", "get", "all"], stdin: "", code: 2, out: Out::Same },
    Step { n: "037", args: &["tags", "dc=eqiad,cluster=cache_text,service", "--action", "get", "all"], stdin: "", code: 2, out: Out::Same },
    Step { n: "038", args: &["tags", VFE, "--action", "get", "cp1001.eqiad.wmnet", "--action", "get", "cp1002.eqiad.wmnet"], stdin: "", code: 0, out: Out::Same },
    Step { n: "039", args: &["--tags", VFE, "--action", "get", "cp1001.eqiad.wmnet"], stdin: "", code: 0, out: Out::Same },
    // Our delete line names the object's path (Python: `Deleted ('Node',) NAME.`).
    Step { n: "040", args: &["tags", VFE, "--action", "delete", "cp1003.eqiad.wmnet"], stdin: "", code: 0, out: Out::Ours("eqiad/cache_text/varnish-fe/cp1003.eqiad.wmnet: deleted\n") },
    Step { n: "041", args: &["select", "dc=codfw,service=apache,name=mw2002.codfw.wmnet", "delete"], stdin: "", code: 0, out: Out::Ours("codfw/appservers/apache/mw2002.codfw.wmnet: deleted\n") },
];

fn reference() -> std::path::PathBuf {
    fixtures().join("python/reference")
}

/// The pool objects of a keyspace, values parsed (our JSON is compact, Python's is not).
fn pools(ks: &Keyspace) -> BTreeMap<String, Value> {
    ks.iter()
        .filter(|(k, _)| k.starts_with("/conftool/v1/pools/"))
        .map(|(k, v)| {
            let v = serde_json::from_str(v).unwrap_or_else(|e| panic!("{k}: {v:?}: {e}"));
            (k.clone(), v)
        })
        .collect()
}

/// The Python tool's stdout at step `n`.
fn python_stdout(n: &str) -> String {
    let path = reference().join(format!("confctl-{n}.txt"));
    let text = std::fs::read_to_string(&path).expect("reference step");
    let start = text.find("# stdout:\n").expect("stdout section") + "# stdout:\n".len();
    let end = text.find("# stderr:\n").expect("stderr section");
    text[start..end].replace("# (no newline at end of stdout)\n", "")
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn the_python_tools_node_session_gives_the_same_pools_and_lines() {
    let ctx = Ctx::new();
    for (k, v) in read_keyspace(&reference().join("after-sync.txt")) {
        ctx.put(&k, &v);
    }
    let mut expected = pools(&read_keyspace(&reference().join("after-sync.txt")));
    assert_eq!(expected.len(), 10, "the reference holds pools");
    let mut wrote = 0;
    for step in STEPS {
        let mut args = vec!["--namespace", "/conftool"];
        args.extend_from_slice(step.args);
        let run = ctx.run_with_stdin("confctl", &args, step.stdin);
        assert_eq!(run.code, step.code, "step {}: {run:?}", step.n);
        assert!(
            run.stderr.matches("nothing written").count() <= 1,
            "step {}: said once: {}",
            step.n,
            run.stderr
        );
        let python = python_stdout(step.n);
        // Where the Python tool asks (or refuses to, without a terminal), we ask too.
        let left_alone = matches!(step.out, Out::LeftAlone);
        if !left_alone && (python.contains("Ok to continue?") || python.contains("not scriptable"))
        {
            assert!(
                run.stderr.contains("Ok to continue? [y/N]"),
                "step {}: {run:?}",
                step.n
            );
        }
        match &step.out {
            Out::Same => assert_eq!(run.stdout, python, "step {}", step.n),
            Out::SameLines => assert_eq!(
                sorted_lines(&run.stdout),
                sorted_lines(&python),
                "step {}",
                step.n
            ),
            Out::ChangeLines => {
                let changes: String = python
                    .lines()
                    .map(|l| l.trim_start_matches("confctl>"))
                    .filter(|l| l.contains(" changed "))
                    .map(|l| format!("{l}\n"))
                    .collect();
                assert!(
                    !changes.is_empty(),
                    "step {}: the reference changes",
                    step.n
                );
                assert_eq!(
                    sorted_lines(&run.stdout),
                    sorted_lines(&changes),
                    "step {}",
                    step.n
                );
            }
            Out::Ours(text) => assert_eq!(run.stdout, *text, "step {}", step.n),
            Out::Other => assert!(!run.stdout.is_empty(), "step {}", step.n),
            Out::LeftAlone => {
                assert_eq!(run.stdout, "", "step {}", step.n);
                assert!(
                    run.stderr.contains("left alone (pooled=inactive")
                        && !run.stderr.contains("Ok to continue?"),
                    "step {}: {run:?}",
                    step.n
                );
            }
        }
        // After a step that wrote (or was meant to), the pools are the Python tool's then;
        // after the others, unchanged.
        let after = reference().join(format!("after-confctl-{}.txt", step.n));
        if after.exists() {
            expected = pools(&read_keyspace(&after));
            wrote += 1;
        }
        assert_eq!(pools(&ctx.dump()), expected, "pools after step {}", step.n);
    }
    assert!(wrote >= 12, "the session writes: {wrote} steps did");
}
