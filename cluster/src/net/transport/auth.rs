//! Peer authentication by a shared cluster secret, challenge-response: the accepting side
//! sends a fresh random nonce (`AuthChallenge`), the caller answers with
//! HMAC-SHA256(secret, transcript) (`AuthProof`), and the acceptor compares in constant
//! time. The transcript binds the nonce, the caller's and the acceptor's node ids and the
//! cluster name, so a proof is good for one connection between two named nodes only and a
//! recorded one cannot be replayed against another nonce. The secret never goes on the wire.
//!
//! Mutual: the caller then challenges the acceptor the same way and writes nothing else
//! until the acceptor's proof checks, so a listener without the secret at a peer's address
//! receives no data. Each proof names its role ([`Role`]), so a proof a node makes as the
//! caller can never be passed off as an acceptor's (a reflection attack).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Bytes in a challenge nonce.
pub(super) const NONCE_SIZE_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Which side of the connection makes a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// The connecting node, answering the acceptor's challenge.
    Caller,
    /// The accepting node, answering the caller's challenge.
    Acceptor,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Caller => b"kvnode peer auth v1 caller",
            Role::Acceptor => b"kvnode peer auth v1 acceptor",
        }
    }
}

/// A fresh nonce from the operating system's generator (via `rand`'s thread generator, a
/// CSPRNG seeded from the OS), never the transport's seeded emulation stream.
pub(super) fn new_nonce() -> Vec<u8> {
    let mut nonce = vec![0u8; NONCE_SIZE_BYTES];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

fn keyed(
    role: Role,
    secret: &str,
    nonce: &[u8],
    caller: &str,
    acceptor: &str,
    cluster: &str,
) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    // Length-prefixed fields, so no two different transcripts share bytes.
    for field in [
        role.label(),
        nonce,
        caller.as_bytes(),
        acceptor.as_bytes(),
        cluster.as_bytes(),
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    mac
}

/// `role`'s proof for `nonce`; `caller` and `acceptor` are node ids whichever side proves.
pub(super) fn prove(
    role: Role,
    secret: &str,
    nonce: &[u8],
    caller: &str,
    acceptor: &str,
    cluster: &str,
) -> Vec<u8> {
    keyed(role, secret, nonce, caller, acceptor, cluster)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// Whether `proof` answers `nonce` under `secret`; compared in constant time
/// (`Mac::verify_slice` uses `subtle`).
pub(super) fn verify(
    role: Role,
    secret: &str,
    nonce: &[u8],
    caller: &str,
    acceptor: &str,
    cluster: &str,
    proof: &[u8],
) -> bool {
    keyed(role, secret, nonce, caller, acceptor, cluster)
        .verify_slice(proof)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_secret_is_accepted() {
        let nonce = new_nonce();
        let proof = prove(Role::Caller, "s3cret", &nonce, "n1", "n2", "kv");
        assert_eq!(proof.len(), 32);
        assert!(verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n1",
            "n2",
            "kv",
            &proof
        ));
    }

    #[test]
    fn wrong_secret_is_refused() {
        let nonce = new_nonce();
        let proof = prove(Role::Caller, "guess", &nonce, "n1", "n2", "kv");
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n1",
            "n2",
            "kv",
            &proof
        ));
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n1",
            "n2",
            "kv",
            &[]
        ));
    }

    #[test]
    fn a_replayed_proof_for_another_nonce_is_refused() {
        let first = new_nonce();
        let second = new_nonce();
        assert_ne!(first, second);
        let proof = prove(Role::Caller, "s3cret", &first, "n1", "n2", "kv");
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &second,
            "n1",
            "n2",
            "kv",
            &proof
        ));
    }

    #[test]
    fn a_proof_is_bound_to_both_ids_and_the_cluster() {
        let nonce = new_nonce();
        let proof = prove(Role::Caller, "s3cret", &nonce, "n1", "n2", "kv");
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n3",
            "n2",
            "kv",
            &proof
        ));
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n1",
            "n3",
            "kv",
            &proof
        ));
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n1",
            "n2",
            "other",
            &proof
        ));
        // Field boundaries count: ("n1","n2") is not ("n1n","2").
        assert!(!verify(
            Role::Caller,
            "s3cret",
            &nonce,
            "n1n",
            "2",
            "kv",
            &proof
        ));
    }

    #[test]
    fn a_callers_proof_is_not_an_acceptors() {
        let nonce = new_nonce();
        let proof = prove(Role::Caller, "s3cret", &nonce, "n1", "n2", "kv");
        assert!(!verify(
            Role::Acceptor,
            "s3cret",
            &nonce,
            "n1",
            "n2",
            "kv",
            &proof
        ));
        let proof = prove(Role::Acceptor, "s3cret", &nonce, "n1", "n2", "kv");
        assert!(verify(
            Role::Acceptor,
            "s3cret",
            &nonce,
            "n1",
            "n2",
            "kv",
            &proof
        ));
    }
}
