//! XDP data plane: load, attach, pin, maps.
