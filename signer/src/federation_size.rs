//! Which federations can exist: how many members (at most [`MAX_MEMBERS`]) and how many of them
//! must sign. The trusted-dealer ceremony checks a federation before drawing its keys, and a
//! manifest is checked against the same rules when it is read.

/// Most members a federation can have: the Bitcoin peg is an `OP_CHECKMULTISIG`, which takes at
/// most 20 keys ([`ferry_types::peg::MAX_PEG_KEYS`]). threshold_crypto and the chain would take more.
pub const MAX_MEMBERS: u32 = ferry_types::peg::MAX_PEG_KEYS as u32;

/// Why a member count and threshold were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationSizeError {
    /// No members.
    #[error("a federation needs at least one member")]
    NoMembers,
    /// More members than the Bitcoin peg can hold.
    #[error(
        "{members} members: at most {MAX_MEMBERS}, because the Bitcoin peg is an OP_CHECKMULTISIG of at most \
         {MAX_MEMBERS} keys"
    )]
    TooManyMembers {
        /// Members asked for.
        members: u32,
    },
    /// A threshold of zero.
    #[error("threshold 0: at least one signature must be required")]
    ZeroThreshold,
    /// More signatures required than there are members.
    #[error("threshold {threshold} exceeds the {members} members: the federation could never sign")]
    ThresholdAboveMembers {
        /// T.
        threshold: u32,
        /// N.
        members: u32,
    },
    /// A threshold that half the members (or fewer) could meet.
    #[error(
        "threshold {threshold} of {members} members is not more than half: two disjoint groups of members could each \
         sign a different release for the same batch; use at least {}", members / 2 + 1
    )]
    MinorityThreshold {
        /// T.
        threshold: u32,
        /// N.
        members: u32,
    },
}

/// Checks a federation of `members` members needing `threshold` signatures:
/// `1 ≤ threshold ≤ members ≤ MAX_MEMBERS` and `threshold > members / 2`, so that no two disjoint
/// groups of members can both sign.
///
/// # Errors
/// The first rule broken, saying why it matters.
pub fn check_federation_size(members: u32, threshold: u32) -> Result<(), FederationSizeError> {
    if members == 0 {
        return Err(FederationSizeError::NoMembers);
    }
    if members > MAX_MEMBERS {
        return Err(FederationSizeError::TooManyMembers { members });
    }
    if threshold == 0 {
        return Err(FederationSizeError::ZeroThreshold);
    }
    if threshold > members {
        return Err(FederationSizeError::ThresholdAboveMembers { threshold, members });
    }
    if u64::from(threshold) * 2 <= u64::from(members) {
        return Err(FederationSizeError::MinorityThreshold { threshold, members });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_size_rules_name_the_problem() {
        assert_eq!(check_federation_size(0, 0), Err(FederationSizeError::NoMembers));
        assert_eq!(check_federation_size(21, 15), Err(FederationSizeError::TooManyMembers { members: 21 }));
        assert_eq!(check_federation_size(20, 14), Ok(()));
        assert_eq!(check_federation_size(4, 0), Err(FederationSizeError::ZeroThreshold));
        assert_eq!(
            check_federation_size(4, 5),
            Err(FederationSizeError::ThresholdAboveMembers { threshold: 5, members: 4 })
        );
        assert_eq!(
            check_federation_size(4, 2),
            Err(FederationSizeError::MinorityThreshold { threshold: 2, members: 4 })
        );
        assert_eq!(
            check_federation_size(5, 2),
            Err(FederationSizeError::MinorityThreshold { threshold: 2, members: 5 })
        );
        for (members, threshold) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (16, 9), (16, 16), (20, 14), (20, 20)] {
            assert_eq!(check_federation_size(members, threshold), Ok(()), "{threshold} of {members}");
        }
        let message = FederationSizeError::MinorityThreshold { threshold: 2, members: 4 }.to_string();
        assert!(message.contains("not more than half") && message.contains("at least 3"), "{message}");
    }
}
