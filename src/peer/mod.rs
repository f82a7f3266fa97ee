//! The peer program (see `bin/peer.rs`).
