//! Why a container creation failed (`ContainerCreationError` in `Message.scala`): the errors the
//! invoker reports in a failed creation ack, written as the case object's name.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A creation failure the invoker reports. The scheduler reschedules some of them (with the same
/// creation id and `retryCount + 1`) and fails the job on the others ([`Self::is_reschedulable`]).
///
/// Beware an upstream quirk: OpenWhisk's scheduler cannot read `ShuttingDownError` (missing from
/// its list) nor `NonExecutableActionError` (its list misspells it), so an ack carrying either is
/// dropped there and the job ends by timeout. They are here because the Scala invoker sends them;
/// which one to send is the caller's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerCreationError {
    /// Not enough free memory, even after evicting paused containers.
    ResourceNotEnoughError,
    /// Creating the container failed for a system reason.
    WhiskError,
    /// Creating the container failed for the user's image (a developer error).
    BlackBoxError,
    /// The container's proxy stopped before its container was ready.
    UnknownError,
    /// The invoker is disabled.
    ShuttingDownError,
    /// The action cannot run in a container (a sequence).
    NonExecutableActionError,
    /// The namespace's identity or the action (at its revision) could not be read.
    DBFetchError,
    /// The action's limits exceed the namespace's.
    InvalidActionLimitError,
}

impl ContainerCreationError {
    /// Every error, in declaration order.
    pub const ALL: [ContainerCreationError; 8] = [
        Self::ResourceNotEnoughError,
        Self::WhiskError,
        Self::BlackBoxError,
        Self::UnknownError,
        Self::ShuttingDownError,
        Self::NonExecutableActionError,
        Self::DBFetchError,
        Self::InvalidActionLimitError,
    ];

    /// The wire name, the Scala case object's.
    pub fn name(self) -> &'static str {
        match self {
            Self::ResourceNotEnoughError => "ResourceNotEnoughError",
            Self::WhiskError => "WhiskError",
            Self::BlackBoxError => "BlackBoxError",
            Self::UnknownError => "UnknownError",
            Self::ShuttingDownError => "ShuttingDownError",
            Self::NonExecutableActionError => "NonExecutableActionError",
            Self::DBFetchError => "DBFetchError",
            Self::InvalidActionLimitError => "InvalidActionLimitError",
        }
    }

    /// Reads a name as OpenWhisk does: trimmed and compared without regard to case.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|error| error.name().eq_ignore_ascii_case(name))
    }

    /// Whether the scheduler retries the creation after this error (its `whiskErrors`), as long
    /// as the ack's `retryCount` is below 5.
    pub fn is_reschedulable(self) -> bool {
        matches!(
            self,
            Self::ResourceNotEnoughError
                | Self::WhiskError
                | Self::ShuttingDownError
                | Self::UnknownError
        )
    }
}

impl fmt::Display for ContainerCreationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ContainerCreationError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ContainerCreationError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown container creation error {:?}",
                name.chars().take(64).collect::<String>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_errors_are_written_as_their_names_and_read_back() {
        let names = [
            "ResourceNotEnoughError",
            "WhiskError",
            "BlackBoxError",
            "UnknownError",
            "ShuttingDownError",
            "NonExecutableActionError",
            "DBFetchError",
            "InvalidActionLimitError",
        ];
        for (error, name) in ContainerCreationError::ALL.into_iter().zip(names) {
            assert_eq!(serde_json::to_value(error).unwrap(), json!(name));
            assert_eq!(error.to_string(), name);
            assert_eq!(
                serde_json::from_value::<ContainerCreationError>(json!(name)).unwrap(),
                error
            );
        }
    }

    #[test]
    fn test_names_read_trimmed_and_case_insensitive_unknown_rejected() {
        assert_eq!(
            ContainerCreationError::from_name(" DBFETCHERROR\n"),
            Some(ContainerCreationError::DBFetchError)
        );
        for bad in [json!("TimeoutError"), json!(""), json!(3), json!(null)] {
            assert!(serde_json::from_value::<ContainerCreationError>(bad).is_err());
        }
    }

    #[test]
    fn test_reschedulable_errors() {
        let reschedulable: Vec<_> = ContainerCreationError::ALL
            .into_iter()
            .filter(|e| e.is_reschedulable())
            .collect();
        assert_eq!(
            reschedulable,
            [
                ContainerCreationError::ResourceNotEnoughError,
                ContainerCreationError::WhiskError,
                ContainerCreationError::UnknownError,
                ContainerCreationError::ShuttingDownError,
            ]
        );
    }
}
