//! The order of document revisions as deletions use it (`DocRevision.compare` in `DocInfo.scala`):
//! only the generation, the number before the first `-` of a CouchDB revision (`3` in `3-7f0c…`),
//! is compared; the hash after it is not.

/// The generation of a revision: its numeric prefix before the first `-` (the whole text when there
/// is no `-`). `None` when that prefix is not a whole number.
pub fn revision_generation(rev: &str) -> Option<u64> {
    let prefix = rev.split_once('-').map_or(rev, |(prefix, _)| prefix);
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    prefix.parse().ok()
}

/// Whether a container at `container_rev` is at most `message_rev`, the old revision of a deletion
/// order, so that it must go. Empty revisions (`None`, or blank text, which OpenWhisk reads as
/// empty) come before every other and equal each other.
///
/// OpenWhisk throws on a revision whose generation is not a number; here such a pair is not
/// "at most", so a container is never shut down on a comparison that cannot be made.
pub fn revision_at_most(container_rev: Option<&str>, message_rev: Option<&str>) -> bool {
    let container_rev = container_rev.map(str::trim).filter(|rev| !rev.is_empty());
    let message_rev = message_rev.map(str::trim).filter(|rev| !rev.is_empty());
    match (container_rev, message_rev) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(container), Some(message)) => {
            match (revision_generation(container), revision_generation(message)) {
                (Some(container), Some(message)) => container <= message,
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_generation_is_the_numeric_prefix() {
        assert_eq!(revision_generation("3-7f0c2e"), Some(3));
        assert_eq!(revision_generation("12-a-b"), Some(12));
        assert_eq!(revision_generation("7"), Some(7));
        for bad in ["", "-1", "x-1", "+1-a", " 1-a", "99999999999999999999999-a"] {
            assert_eq!(revision_generation(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn test_at_most_compares_only_generations() {
        assert!(revision_at_most(Some("1-abc"), Some("1-abc")));
        // Same generation, other hash: equal for OpenWhisk.
        assert!(revision_at_most(Some("2-fff"), Some("2-000")));
        assert!(revision_at_most(Some("2-fff"), Some("10-000")));
        assert!(!revision_at_most(Some("10-000"), Some("9-fff")));
        assert!(!revision_at_most(Some("3-a"), Some("2-a")));
    }

    #[test]
    fn test_empty_and_unreadable_revisions() {
        assert!(revision_at_most(None, None));
        assert!(revision_at_most(None, Some("1-a")));
        assert!(revision_at_most(Some(" "), Some("1-a")));
        assert!(!revision_at_most(Some("1-a"), None));
        assert!(!revision_at_most(Some("1-a"), Some("")));
        assert!(!revision_at_most(Some("x-a"), Some("9-a")));
        assert!(!revision_at_most(Some("1-a"), Some("y-a")));
    }
}
