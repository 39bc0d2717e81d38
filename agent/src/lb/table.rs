//! Lookup tables for the XDP program's services.
