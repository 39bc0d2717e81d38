//! VRRP state machine (sans-IO).
