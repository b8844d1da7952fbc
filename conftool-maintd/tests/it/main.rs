//! Integration tests of conftool-maintd against a real etcd (the testkit starts it).
