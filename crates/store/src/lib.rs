//! Kassa store node (being written).
