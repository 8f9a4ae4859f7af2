//! AWS clients.
