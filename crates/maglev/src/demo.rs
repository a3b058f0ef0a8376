//! The demo engine (in progress).
