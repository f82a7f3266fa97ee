//! What can be checked without a server.

use super::*;
use mongodb::options::Acknowledgment;

/// The replica-set URI README.md and MONGODB.md give is read as meant:
/// three seeds, the set's name, majority writes, retryable writes, and
/// the URI's own server selection timeout kept over the 2 s default.
#[test]
fn the_readme_replica_set_uri_is_read_as_meant() {
    let uri = "mongodb://db1:27017,db2:27017,db3:27017/lanchat?replicaSet=rs0&w=majority&retryWrites=true&serverSelectionTimeoutMS=5000";
    let opts = client_options(uri).expect("parses");
    assert_eq!(opts.hosts.len(), 3);
    assert_eq!(opts.repl_set_name.as_deref(), Some("rs0"));
    assert_eq!(opts.default_database.as_deref(), Some("lanchat"));
    let w = opts.write_concern.as_ref().and_then(|w| w.w.clone());
    assert_eq!(w, Some(Acknowledgment::Majority));
    assert_eq!(opts.retry_writes, Some(true));
    assert_eq!(opts.server_selection_timeout, Some(Duration::from_secs(5)));
    assert_eq!(opts.connect_timeout, Some(TIMEOUT));
}
