use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_source(&Source::embedded("config.toml", text), Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn issues(text: &str) -> Vec<String> {
    load(text).expect_err("the config should be refused").0.iter().map(ToString::to_string).collect()
}

#[test]
fn the_shipped_config_loads_with_every_shipped_plugin() {
    let config =
        Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")).expect("config.toml is valid");
    let vendors: Vec<&str> = config.vendors.iter().map(|v| v.name()).collect();
    assert_eq!(vendors, ["callkeeper", "calltracking", "envybox", "jivo"]);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.vendor_settings("jivo").replies.len(), 1);
    assert!(matches!(&config.storage.url, StorageUrl::Sqlite(path) if path.ends_with("data/switchboard.db")));
}

#[test]
fn the_embedded_config_and_plugins_load() {
    let config = Config::embedded().expect("the embedded config is valid");
    assert_eq!(config.vendors.iter().count(), 4);
}

#[test]
fn an_empty_file_means_every_default() {
    let config = load("").unwrap();
    assert_eq!(config.server.body_limit_bytes, 1024 * 1024);
    assert_eq!(config.storage.dedup_window, Duration::from_secs(600));
    assert_eq!(config.warnings.len(), 4, "every vendor is open without a secret: {:?}", config.warnings);
}

#[test]
fn problems_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nlisen = \"x\"\n", "<embedded config.toml>:2 server.lisen: unknown field `lisen`"),
        (
            "[server]\nbody_limit_bytes = \"big\"\n",
            "<embedded config.toml>:2 server.body_limit_bytes: invalid type: string \"big\", expected u64",
        ),
        (
            "[server]\nlisten = \"localhost\"\n",
            "<embedded config.toml>:2 server.listen: expected an address such as `127.0.0.1:8080`; got `localhost`",
        ),
        (
            "[server]\nread_timeout_secs = 0\n",
            "<embedded config.toml>:2 server.read_timeout_secs: must be greater than 0",
        ),
        (
            "[storage]\nurl = \"mysql://x\"\n",
            "<embedded config.toml>:2 storage.url: expected a database URL such as `sqlite://data/switchboard.db` or `postgres://user:pass@host/db`; got `mysql://x`",
        ),
        (
            "\n[vendors.jiv]\n",
            "<embedded config.toml>:2 vendors.jiv: no plugin is called `jiv`; loaded plugins: callkeeper, calltracking, envybox, jivo",
        ),
        (
            "[vendors.jivo]\nsecret = \"${SWITCHBOARD_TEST_SURELY_UNSET}\"\n",
            "<embedded config.toml>:2 vendors.jivo.secret: environment variable SWITCHBOARD_TEST_SURELY_UNSET is not set",
        ),
        (
            "[[vendors.jivo.reply]]\nevents = [\"chat_acepted\"]\njson.crm_link = \"x\"\n",
            "<embedded config.toml>:2 vendors.jivo.reply[0].events: `chat_acepted` is not an event of plugin `jivo`",
        ),
        (
            "[[vendors.jivo.reply]]\njson.crm_link = \"{{#if}}\"\n",
            "<embedded config.toml>:1 vendors.jivo.reply[0].json: template `/crm_link`",
        ),
        (
            "\n[outputs.crm]\ntype = \"http\"\nurl = \"ftp://crm.example.com\"\n",
            "<embedded config.toml>:4 outputs.crm.url: url must start with http:// or https://",
        ),
        (
            "[outputs.sales]\ntype = \"telegram\"\ntoken = \"123:abc\"\nchat_id = \"sales\"\n",
            "<embedded config.toml>:4 outputs.sales.chat_id: chat_id must be a number",
        ),
        (
            "[outputs.mail]\ntype = \"email\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n",
            "<embedded config.toml>:1 outputs.mail: set `smtp = ",
        ),
    ];
    for (text, expected) in cases {
        let found = issues(text);
        assert!(found.iter().any(|i| i.starts_with(expected)), "{text:?}\nexpected: {expected}\nfound: {found:#?}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = issues("[server]\nlisten = \"nope\"\nread_timeout_secs = 0\n[vendors.nobody]\n");
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn secrets_expand_from_the_environment_and_stay_hidden() {
    let env = |name: &str| (name == "JIVO_SECRET").then(|| "s3cret-value".to_owned());
    let source = Source::embedded("config.toml", "[vendors.jivo]\nsecret = \"${JIVO_SECRET}\"\n");
    let config = Config::from_source_with_env(&source, Path::new(env!("CARGO_MANIFEST_DIR")), &env).unwrap();
    let secret = config.vendor_settings("jivo").secret.as_ref().expect("secret set");
    assert!(secret.matches("s3cret-value"));
    assert!(!format!("{config:?}").contains("s3cret-value"));
    assert_eq!(config.warnings.len(), 3);
}

#[test]
fn broken_plugins_are_reported_with_their_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.toml"),
        "event = { field = \"type\" }\n\n[events]\nlead = { kind = \"lead.new\" }\n\n[fields]\n\"contact.fone\" = [\"phone\"]\n\n[[classify]]\nwhen = { type = { nott = 1 } }\nkind = \"form.submitted\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("other.toml"), "name = \"different\"\nevent = { field = \"x\" }\n").unwrap();
    let text = format!("[paths]\nplugins = \"{}\"\n", dir.path().display());
    let found = issues(&text);
    let acme = dir.path().join("acme.toml").display().to_string();
    let other = dir.path().join("other.toml").display().to_string();
    let expected = [
        format!("{acme}:4 events.\"lead\".kind: unknown kind `lead.new`"),
        format!("{acme}:7 fields.\"contact.fone\": `contact.fone` is not a canonical field"),
        format!("{acme}:9 classify[0].when.type.nott: unknown operator `nott`"),
        format!("{other}:1 name: the name `different` must match the file name `other.toml`"),
    ];
    for expected in expected {
        assert!(found.iter().any(|i| i.starts_with(&expected)), "expected: {expected}\nfound: {found:#?}");
    }
}

#[test]
fn allow_from_and_trusted_proxies_take_addresses_and_ranges() {
    let config = load(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[vendors.jivo]\nallow_from = [\"185.22.64.1/22\", \"2a02:6b8::1\"]\n",
    )
    .unwrap();
    let allow: Vec<String> = config.vendor_settings("jivo").allow_from.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["185.22.64.0/22", "2a02:6b8::1/128"], "host bits are cleared; an address is a /32 or /128");
    assert_eq!(config.server.trusted_proxies.len(), 2);
    assert!(config.vendor_settings("envybox").allow_from.is_empty(), "absent: from anywhere");
    let problems = issues("[vendors.jivo]\nsecret = \"s\"\nallow_from = [\"185.22.64.0/33\"]\n");
    assert!(
        problems.iter().any(|p| p.contains("config.toml>:3 vendors.jivo.allow_from") && p.contains("185.22.64.0/33")),
        "{problems:?}"
    );
}

// lettre's pool spawns a task when it is built and when it is dropped: inside a runtime.
#[tokio::test]
async fn a_password_an_smtp_output_may_send_in_clear_is_a_warning() {
    let mail = |server: &str| {
        format!(
            "[outputs.mail]\ntype = \"email\"\n{server}\nfrom = \"bot@example.com\"\nto = [\"sales@example.com\"]\n"
        )
    };
    let clear = load(&mail("host = \"relay.example.com\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\""));
    let warnings = clear.unwrap().warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("outputs.mail: the SMTP password for relay.example.com can be sent in clear")),
        "{warnings:?}"
    );
    let by_url = load(&mail("smtp = \"smtp://u:p@relay.example.com?tls=opportunistic\"")).unwrap().warnings;
    assert!(by_url.iter().any(|w| w.contains("security is `opportunistic`")), "{by_url:?}");
    // A relay on port 25 named by a URL that once meant plain SMTP: said, since it is not any more.
    let relay = load(&mail("smtp = \"smtp://relay.example.com:25\"")).unwrap().warnings;
    assert!(relay.iter().any(|w| w.contains("requires STARTTLS now")), "{relay:?}");
    for safe in [
        "smtp = \"smtp://u:p@relay.example.com\"",
        "smtp = \"smtp://[::1]:25?tls=none\"",
        "host = \"localhost\"\nsecurity = \"none\"",
    ] {
        let warnings = load(&mail(safe)).unwrap().warnings;
        assert!(!warnings.iter().any(|w| w.contains("in clear")), "{safe}: {warnings:?}");
    }
}

/// No secret reaches `{:?}` of the loaded configuration: vendor secrets, the admin token, a
/// PostgreSQL password, a bot token, an SMTP password in either form, a signing secret and a
/// header holding a token — every output included, as built.
#[tokio::test]
async fn no_secret_shows_in_the_configuration_or_its_outputs() {
    let secrets = [
        ("VENDOR", "vendor-s3cret-1"),
        ("ADMIN", "admin-s3cret-2"),
        ("PG", "pg-s3cret-3"),
        ("BOT", "123456:bot-s3cret-4"),
        ("SMTP_URL_PASS", "smtp-url-s3cret-5"),
        ("SMTP_PASS", "smtp-s3cret-6"),
        ("SIGN", "sign-s3cret-7"),
        ("CRM", "crm-s3cret-8"),
    ];
    let env = |name: &str| secrets.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned());
    let text = r#"
[server]
admin_token = "${ADMIN}"
[storage]
url = "postgres://switchboard:${PG}@db.example.com/switchboard"
[vendors.jivo]
secret = "${VENDOR}"
[outputs.tg]
type = "telegram"
token = "${BOT}"
chat_id = "-100"
[outputs.mail_url]
type = "email"
smtp = "smtps://bot:${SMTP_URL_PASS}@smtp.example.com"
from = "bot@example.com"
to = ["sales@example.com"]
[outputs.mail]
type = "email"
host = "smtp.example.com"
username = "bot"
password = "${SMTP_PASS}"
from = "bot@example.com"
to = ["sales@example.com"]
[outputs.crm]
type = "http"
url = "https://crm.example.com/api/leads"
headers = { Authorization = "Bearer ${CRM}" }
signing_secret = "${SIGN}"
"#;
    let config = Config::from_source_with_env(&Source::embedded("config.toml", text), Path::new("."), &env).unwrap();
    let shown = format!("{config:?}");
    for (name, value) in secrets {
        assert!(!shown.contains(value), "{name} shows in the configuration's Debug output");
    }
    for (name, entry) in &config.outputs {
        let output = format!("{:?}", entry.output.as_ref().unwrap());
        for (secret, value) in secrets {
            assert!(!output.contains(value), "{secret} shows in output {name}: {output}");
        }
    }
}

#[test]
fn listener_limits_and_admin_hosts_are_checked_at_load() {
    let shown = issues(
        "[server]\nheader_timeout_secs = 100000\nmax_connections = 10000000\nadmin_hosts = [\"dash.example.com:8081\", \"ok.example\"]\n",
    );
    let expected = [
        "server.header_timeout_secs: must be at most 3600",
        "server.max_connections: must be at most 1000000",
        "server.admin_hosts: `dash.example.com:8081` is not a plain host name",
    ];
    for want in expected {
        assert!(shown.iter().any(|issue| issue.contains(want)), "{want} in {shown:#?}");
    }
    let config = load("[server]\nadmin_hosts = [\"Dash.Example.COM.\"]\n").unwrap();
    assert_eq!(config.server.admin_hosts, ["dash.example.com"]);
}

/// Validation checks every output and compiles its templates without making a client: the
/// result says what each output will need from a template, and building it is a later step.
#[test]
fn validation_checks_outputs_without_building_them() {
    let text = "[outputs.crm]\ntype = \"http\"\nurl = \"https://crm.example.com/{{vendor}}\"\nformat = \"form\"\n\n\
                [outputs.off]\ntype = \"telegram\"\nenabled = false\ntoken = \"${UNSET_TOKEN}\"\nchat_id = 1\n";
    let validated = Config::validate_source(&Source::embedded("config.toml", text), Path::new(".")).unwrap();
    let crm = validated.outputs["crm"].settings.as_ref().expect("switched on");
    assert_eq!(crm.kind(), "http");
    assert!(
        crm.plan()
            .iter()
            .any(|need| need.part == crate::render::Part::Body && need.escape == crate::render::Escape::Form)
    );
    assert!(validated.outputs["off"].settings.is_none(), "a switched-off output is not checked");
    let config = validated.build().unwrap();
    assert!(config.outputs["crm"].output.is_some());
    assert!(config.outputs["off"].output.is_none());
}
