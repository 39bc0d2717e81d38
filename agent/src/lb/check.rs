//! Health checks of real servers.
