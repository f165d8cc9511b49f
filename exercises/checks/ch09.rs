//! Checks for chapter 9: `cargo test -p exercises ch09`.

use super::probe;
use sha2::{Digest as _, Sha256};

#[test]
fn ex9_1_oci_whiteouts_become_overlay_whiteouts() {
    let report = probe("ch09-whiteouts", "9.1", "ch09_image.rs");
    let returned = |entry: &str| report.get(&format!("returned {entry}")).to_string();
    let kind = |rel: &str| report.get(&format!("kind {rel}")).to_string();
    let context = format!("\nwhat the probe saw:\n{}", report.text);

    // What this layer put in etc before etc's opaque marker stays: the
    // marker hides the layers below only.
    assert_eq!(
        kind("etc/keep"),
        "file",
        "\n\nlayer/etc/keep, a file of this layer unpacked before the marker, is gone: \
         making etc opaque keeps what this layer has in it (it hides the layers below \
         only); set the xattr on the directory as it is\n{context}"
    );

    // The whiteouts: a 0/0 character device, under the name they hide.
    for (entry, hidden) in [
        ("etc/.wh.passwd", "etc/passwd"),
        (".wh.old-file", "old-file"),
        ("usr/share/doc/.wh.README", "usr/share/doc/README"),
    ] {
        let (said, made) = (returned(entry), kind(hidden));
        let marker = hidden
            .rsplit_once('/')
            .map_or(format!(".wh.{hidden}"), |(d, n)| format!("{d}/.wh.{n}"));
        let idea = if said.contains("ENOENT") || said.contains("No such file") {
            "make the directories on the way first (create_dir_all): the tar may hold \
             the whiteout before the directory, or only the whiteout"
                .to_string()
        } else if said == "false" {
            format!(
                "{entry} is a whiteout: only the last component of the path says so \
                 (Path::file_name), whatever directory it is in"
            )
        } else if kind(&marker) != "missing" {
            format!(
                "the whiteout takes the name it hides: {hidden}, not {marker} (which \
                 would be an ordinary name in the merged view)"
            )
        } else if made == "file" {
            "a whiteout in an overlay layer is a character device numbered 0/0, not a \
             file: mknod(path, S_IFCHR, 0, 0)"
                .to_string()
        } else {
            "make a character device numbered 0/0 under the name it hides".to_string()
        };
        assert!(
            said == "true" && made == "whiteout",
            "\n\napply_whiteout(layer, {entry:?}) returned {said} and made {made} at \
             layer/{hidden}: {idea}\n{context}"
        );
    }

    // The opaque markers: the xattr on the directory, which keeps its files.
    for dir in ["etc", "var/cache"] {
        let entry = format!("{dir}/.wh..wh..opq");
        let said = returned(&entry);
        let trusted = report.get(&format!("trusted.overlay.opaque {dir}"));
        let user = report.get(&format!("user.overlay.opaque {dir}"));
        let idea = if kind(&format!("{dir}/.wh..opq")) != "missing" {
            format!(
                "{entry} is the opaque marker, not the whiteout of a file named .wh..opq: \
                 look for .wh..wh..opq before .wh."
            )
        } else if user == "y" {
            "user.overlay.opaque is for overlays mounted with userxattr (in a user \
             namespace); the kernel reads trusted.overlay.opaque = y"
                .into()
        } else {
            format!(
                "the marker makes {dir} opaque: set the xattr trusted.overlay.opaque = y on \
                 layer/{dir} (making the directory first if it is not there)"
            )
        };
        assert!(
            said == "true" && trusted == "y",
            "\n\napply_whiteout(layer, {entry:?}) returned {said}; the xattr \
             trusted.overlay.opaque of layer/{dir} is {trusted:?}: {idea}\n{context}"
        );
        assert_eq!(
            kind(&format!("{dir}/.wh..wh..opq")),
            "missing",
            "the marker itself is not written into the layer{context}"
        );
    }

    // Ordinary names: not applied, nothing made.
    for (entry, made_at) in [
        ("etc/hosts", "etc/hosts"),
        ("notes/my.wh.file", "notes"),
        ("bin/wh.sh", "bin"),
    ] {
        let (said, made) = (returned(entry), kind(made_at));
        assert!(
            said == "false" && made == "missing",
            "\n\napply_whiteout(layer, {entry:?}) returned {said} and made {made} at \
             layer/{made_at}: {entry} is an ordinary entry (only a name that STARTS with \
             .wh. is a whiteout): return false and make nothing, the caller unpacks it\n{context}"
        );
    }
    assert_eq!(
        (report.number("host_entries"), report.get("left_behind")),
        (0, "false"),
        "nothing should reach the host's /tmp"
    );
}

/// A blob that hands out its bytes a few at a time, as a pipe or a tar
/// entry may, and remembers whether it was read to its end.
struct Feed {
    data: Vec<u8>,
    at: usize,
    ended: bool,
    /// The copy's `to`, and whether it was there while the blob was still
    /// being read (before its digest could be checked).
    to: std::path::PathBuf,
    to_early: bool,
}

impl std::io::Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.to_early |= self.to.exists();
        let n = buf.len().min(4093).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        self.ended |= n == 0 && !buf.is_empty();
        Ok(n)
    }
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that look random, the same on every run.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn ex9_2_a_blob_is_verified_while_it_is_copied() {
    use crate::under_test::ch09_image::copy_verified;
    super::own_work("9.2", "ch09_image.rs");
    let tmp = workshop_testkit::TempDir::new("ex9-2");
    let data = noise((1 << 20) + 7);
    let real = hex_sha256(&data);
    let name = "blobs/sha256/the-layer-of-ex9-2";
    // Each case in a directory of its own: (what copy_verified returned, the
    // names in the directory after it, (whether the blob was read to its end,
    // whether `to` was there before that), what the file at `to` holds, how
    // many bytes of the blob were read).
    let run = |case: &str, data: &[u8], digest: &str| {
        let dir = tmp.path().join(case);
        std::fs::create_dir(&dir).unwrap();
        let to = dir.join("blob");
        let mut feed = Feed {
            data: data.to_vec(),
            at: 0,
            ended: false,
            to: to.clone(),
            to_early: false,
        };
        let result = copy_verified(&mut feed, name, digest, &to).map_err(|e| format!("{e:#}"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let read = (feed.ended, feed.to_early);
        (result, names, read, std::fs::read(&to).ok(), feed.at)
    };

    // A good blob: copied whole, its size returned, nothing else left.
    let (result, names, (ended, early), copied, _) = run("good", &data, &format!("sha256:{real}"));
    if let Err(error) = &result {
        let short_hex = error.split("sha256:").skip(1).any(|rest| {
            let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
            hex > 0 && hex < 64
        });
        let idea = if short_hex {
            "a digest you computed has fewer than 64 hex digits: each byte is two hex \
             digits, zero-padded (format!(\"{b:02x}\")); {b:x} drops the leading 0"
        } else if !ended {
            "it stopped reading before the end of the blob: a read may return fewer bytes \
             than asked for; loop until it returns 0 (or let std::io::copy loop)"
        } else {
            "hash every byte read, in order, and compare the hex with the digest's"
        };
        panic!(
            "\n\ncopy_verified refused a good blob of {} bytes (sha256:{real}): {error}\n{idea}\n",
            data.len()
        );
    }
    assert_eq!(
        result,
        Ok(data.len() as u64),
        "copy_verified should return the blob's size"
    );
    assert!(
        copied.as_deref() == Some(&data[..]),
        "the file at `to` should hold the blob's bytes, all {} of them",
        data.len()
    );
    assert_eq!(names, ["blob"], "only `to` should be left in its directory");
    assert!(
        !early,
        "\n\n`to` was there while the blob was still being read, before its digest was \
         checked: a crash (or a reader) then finds unchecked bytes under the blob's name; \
         write a temporary file beside it and rename it to `to` once the digest matched\n"
    );
    let (result, names, _, copied, _) = run("empty", b"", &format!("sha256:{}", hex_sha256(b"")));
    assert!(
        result == Ok(0) && names == ["blob"] && copied.is_some_and(|c| c.is_empty()),
        "an empty blob with the empty digest is a blob too: copied (an empty file), size 0; \
         got {result:?}, {names:?}"
    );

    // A blob whose bytes are not what its digest says: refused, named, not kept.
    let mut last = real.clone();
    let flipped = if last.ends_with('0') { '1' } else { '0' };
    last.pop();
    last.push(flipped);
    let (result, names, _, _, _) = run("mismatch", &data, &format!("sha256:{last}"));
    let error = result.expect_err(
        "\n\ncopy_verified accepted a blob whose digest differs from the manifest's in the \
         last hex digit: compare all 64 digits (a short id of 12 is for people, not for \
         checks)\n",
    );
    assert!(
        error.contains(name),
        "\n\nthe error for a blob that does not match its digest should name the blob \
         ({name}), so that the user knows which: it said {error:?}\n"
    );
    assert!(
        error.contains(&last) && error.contains(&real),
        "\n\nthe error should say both digests, the manifest's (sha256:{last}) and \
         what the bytes gave (sha256:{real}): it said {error:?}\n"
    );
    assert!(
        names.is_empty(),
        "\n\ncopy_verified refused the blob but left the file {names:?} behind: write a \
         temporary file, rename it to `to` only once the digest matched, remove it \
         otherwise (a later run must not take a bad blob for a good one)\n"
    );

    // Digests that are not `sha256:` and 64 lowercase hex digits.
    for (case, (digest, idea)) in [
        (
            format!("sha256:{}", real.to_uppercase()),
            "uppercase hex: an OCI sha256 digest is 64 lowercase hex digits; refuse anything else",
        ),
        (
            format!("sha512:{real}"),
            "the algorithm is part of the digest: sha256: only, refuse sha512 and the rest \
             (the hex after the colon is not enough)",
        ),
        (
            format!("sha256:{}", &real[..12]),
            "a digest is 64 hex digits: a short id of 12 is not a digest",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (result, names, _, _, read) = run(&format!("bad-digest-{case}"), &data, &digest);
        assert!(
            result.is_err() && names.is_empty(),
            "\n\ncopy_verified(.., {digest:?}, ..) gave {:?} and left {names:?}: {idea}\n",
            result.map(|n| format!("Ok({n})"))
        );
        assert!(
            read == 0,
            "\n\ncopy_verified(.., {digest:?}, ..) read {read} bytes of the blob before \
             refusing it: a digest that is not `sha256:` and 64 lowercase hex digits can \
             be refused before reading anything ({idea}); a blob of gigabytes should not \
             be read for nothing\n"
        );
    }
}
