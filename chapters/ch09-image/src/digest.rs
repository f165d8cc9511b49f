//! The sha256 of a stream, as the `sha256:HEX` digest the image formats use.

use anyhow::{bail, Context, Result};
use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};
use std::io::Read;

/// The digest `sha256:HEX` of `hash`'s bytes so far.
fn digest_of(hash: Sha256) -> Digest {
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
        .parse()
        .expect("64 lowercase hex digits are a valid sha256 digest")
}

/// The digest of everything `reader` yields, and how many bytes that was.
pub fn sha256_of(mut reader: impl Read) -> Result<(Digest, u64)> {
    let mut hashing = HashingReader::new(&mut reader);
    std::io::copy(&mut hashing, &mut std::io::sink()).context("failed to read for its digest")?;
    Ok(hashing.finish())
}

/// A reader that hashes what passes through it, so that a blob is checked
/// while it is copied or unpacked, never read twice.
pub struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    /// The digest and length of what was read.
    pub fn finish(self) -> (Digest, u64) {
        (digest_of(self.hash), self.len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Refuse any digest that is not sha256 (the only one this store keeps),
/// naming what was refused.
pub fn require_sha256(digest: &Digest) -> Result<()> {
    if *digest.algorithm() != DigestAlgorithm::Sha256 {
        bail!("{digest}: only sha256 digests are supported");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_and_abc() {
        let (empty, n) = sha256_of(&b""[..]).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            empty.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (abc, n) = sha256_of(&b"abc"[..]).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            abc.digest(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
