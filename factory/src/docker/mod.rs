//! Docker factory (in progress).
