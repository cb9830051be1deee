//! Local store (in progress).
