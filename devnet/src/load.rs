//! Load generation (filled in below).
