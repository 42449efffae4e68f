//! The PKCS#12 key derivation function (RFC 7292, appendix B.2) over OpenSSL's digests, and the
//! password encoding it takes (a BMPString with two zero bytes at the end, B.1).

use openssl::hash::{Hasher, MessageDigest};

use super::Pkcs12Error;

/// What the derived bytes are for (the "ID" byte of B.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Key material for a cipher.
    Key = 1,
    /// An initialisation vector.
    Iv = 2,
    /// The key of the integrity MAC.
    Mac = 3,
}

/// The password as RFC 7292 B.1 wants it: UTF-16 big-endian, then a 16-bit zero.
pub(crate) fn bmp_password(password: &str) -> Vec<u8> {
    let mut out: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    out.extend([0, 0]);
    out
}

/// `n` bytes derived from the BMP-encoded password and the salt with `iterations` rounds of
/// `digest` (SHA-1 or SHA-256: both have 64-byte blocks).
pub(crate) fn derive(
    digest: MessageDigest,
    bmp_password: &[u8],
    salt: &[u8],
    purpose: Purpose,
    iterations: u32,
    n: usize,
) -> Result<Vec<u8>, Pkcs12Error> {
    let v = digest.block_size();
    let u = digest.size();
    if iterations == 0 || v == 0 || u == 0 {
        return Err(Pkcs12Error::Malformed(
            "a zero iteration count or digest size",
        ));
    }
    let stretch = |s: &[u8]| -> Vec<u8> {
        if s.is_empty() {
            return Vec::new();
        }
        let len = v * s.len().div_ceil(v);
        s.iter().copied().cycle().take(len).collect()
    };
    let d = vec![purpose as u8; v];
    let mut i = stretch(salt);
    i.extend(stretch(bmp_password));
    let mut out = Vec::with_capacity(n + u);
    let mut hasher = Hasher::new(digest)?;
    while out.len() < n {
        hasher.update(&d)?;
        hasher.update(&i)?;
        let mut a = hasher.finish()?.to_vec();
        for _ in 1..iterations {
            hasher.update(&a)?;
            a = hasher.finish()?.to_vec();
        }
        out.extend_from_slice(&a);
        if out.len() >= n {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v), B = A repeated to v bytes.
        let b: Vec<u8> = a.iter().copied().cycle().take(v).collect();
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Vectors computed by OpenSSL's own implementation:
    /// `openssl kdf -keylen N -kdfopt digest:D -kdfopt hexpass:<BMP password> -kdfopt
    /// hexsalt:S -kdfopt iter:I -kdfopt id:ID PKCS12KDF`.
    #[test]
    fn derives_what_openssl_derives() {
        let cases: [(MessageDigest, Purpose, usize, u32, &str, &str, &str); 5] = [
            (MessageDigest::sha1(), Purpose::Key, 24, 1024, "Qwerty12", "0102030405060708",
             "52D776AC8206EFB6B66C203852659A9B7F1FA991180BFCBC"),
            (MessageDigest::sha1(), Purpose::Iv, 8, 1024, "Qwerty12", "0102030405060708",
             "1441313CDADBAE22"),
            (MessageDigest::sha1(), Purpose::Key, 5, 1, "Qwerty12",
             "000102030405060708090a0b0c0d0e0f10111213", "D503CB044B"),
            (MessageDigest::sha256(), Purpose::Mac, 32, 2048, "Құпия2026сөз",
             "0102030405060708090a0b0c0d0e0f10",
             "F12DF85C8E79379719CDB8AF1182206E50BBF625076A03446AD6FD4BBB63804E"),
            // A password longer than a block, and more output than one digest.
            (MessageDigest::sha1(), Purpose::Key, 50, 3,
             "Abcdefghijklmnopqrstuvwxyz0123456789Abcdefghijklmnopqrstuvwxyz0123456789", "ff",
             "712908C9D1FFCDAE6D3BCDB0BD61EB9FF6A4012EEDE8EDBCDA198CC05126903A202AA6A0D7634BA0567E9A5AF16C586162A9"),
        ];
        for (digest, purpose, n, iterations, password, salt, expected) in cases {
            let salt = hex::decode(salt).unwrap();
            let got = derive(
                digest,
                &bmp_password(password),
                &salt,
                purpose,
                iterations,
                n,
            )
            .unwrap();
            assert_eq!(
                hex::encode_upper(got),
                expected,
                "{password} {purpose:?} {n}"
            );
        }
    }

    #[test]
    fn the_password_is_utf16_with_a_terminator() {
        assert_eq!(bmp_password("Ab"), [0, 0x41, 0, 0x62, 0, 0]);
        assert_eq!(bmp_password("Құ"), [0x04, 0x9a, 0x04, 0xb1, 0, 0]);
    }
}
