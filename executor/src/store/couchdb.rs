//! CouchDB store (in progress).
