//! A small reader of BER, enough for PKCS#12 as real software writes it: definite and
//! indefinite lengths (NCA's containers use both), constructed OCTET STRINGs, low tag numbers
//! only. Bounded: nesting depth, lengths checked against the input, no recursion on
//! attacker-chosen depth beyond [`MAX_DEPTH`].

use std::borrow::Cow;

use der::asn1::ObjectIdentifier;

use super::Pkcs12Error;

/// How deep constructed encodings may nest (PKCS#12 needs about a dozen levels).
const MAX_DEPTH: usize = 32;

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const BMP_STRING: u8 = 0x1e;
/// `[0]`, constructed: an EXPLICIT tag (or an IMPLICIT one on a constructed type).
pub(crate) const CONTEXT_0: u8 = 0xa0;
/// `[0]`, primitive: an IMPLICIT tag on a primitive type.
pub(crate) const CONTEXT_0_PRIMITIVE: u8 = 0x80;

const CONSTRUCTED: u8 = 0x20;

fn malformed<T>(what: &'static str) -> Result<T, Pkcs12Error> {
    Err(Pkcs12Error::Malformed(what))
}

/// One tag-length-value: its identifier octet and its contents (without an end-of-contents).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    depth: usize,
}

/// The elements of a constructed value, one after the other.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    depth: usize,
}

/// Read the header at the start of `input`: (tag, header length, content length or None for
/// indefinite).
fn header(input: &[u8]) -> Result<(u8, usize, Option<usize>), Pkcs12Error> {
    let (&tag, after) = input.split_first().map_or(malformed("truncated"), Ok)?;
    if tag & 0x1f == 0x1f {
        return malformed("a high tag number");
    }
    let (&first, after) = after.split_first().map_or(malformed("truncated"), Ok)?;
    if first < 0x80 {
        return Ok((tag, 2, Some(usize::from(first))));
    }
    if first == 0x80 {
        if tag & CONSTRUCTED == 0 {
            return malformed("an indefinite length on a primitive value");
        }
        return Ok((tag, 2, None));
    }
    let count = usize::from(first & 0x7f);
    if count > 4 {
        return malformed("a length of more than four octets");
    }
    let bytes = after.get(..count).map_or(malformed("truncated"), Ok)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((tag, 2 + count, Some(len)))
}

impl<'a> Reader<'a> {
    /// A reader over a whole encoding (depth 0).
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader {
            rest: input,
            depth: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The identifier octet of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element.
    pub(crate) fn next_tlv(&mut self) -> Result<Tlv<'a>, Pkcs12Error> {
        if self.depth > MAX_DEPTH {
            return malformed("nested too deeply");
        }
        let (tag, head, len) = header(self.rest)?;
        let body = self.rest.get(head..).map_or(malformed("truncated"), Ok)?;
        let (content, used) = match len {
            Some(len) => (body.get(..len).map_or(malformed("truncated"), Ok)?, len),
            None => {
                // Skip the children up to the end-of-contents octets.
                let mut inner = Reader {
                    rest: body,
                    depth: self.depth + 1,
                };
                loop {
                    if inner.rest.starts_with(&[0, 0]) {
                        break;
                    }
                    inner.next_tlv()?;
                }
                let len = body.len() - inner.rest.len();
                (body.get(..len).map_or(malformed("truncated"), Ok)?, len + 2)
            }
        };
        self.rest = body.get(used..).map_or(malformed("truncated"), Ok)?;
        Ok(Tlv {
            tag,
            content,
            depth: self.depth,
        })
    }

    /// The next element, which must carry `tag` (the constructed bit is compared too).
    pub(crate) fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, Pkcs12Error> {
        let tlv = self.next_tlv()?;
        if tlv.tag != tag {
            return Err(Pkcs12Error::UnexpectedTag {
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok(tlv)
    }

    /// Nothing may follow.
    pub(crate) fn finish(&self) -> Result<(), Pkcs12Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            malformed("trailing data")
        }
    }
}

impl<'a> Tlv<'a> {
    /// The elements inside a constructed value.
    pub(crate) fn children(&self) -> Result<Reader<'a>, Pkcs12Error> {
        if self.tag & CONSTRUCTED == 0 {
            return malformed("a primitive value where a constructed one belongs");
        }
        Ok(Reader {
            rest: self.content,
            depth: self.depth + 1,
        })
    }

    /// The octets of an OCTET STRING (or of an IMPLICIT-tagged one): the contents of the
    /// primitive form, or the primitive segments of the constructed form joined.
    pub(crate) fn octets(&self) -> Result<Cow<'a, [u8]>, Pkcs12Error> {
        if self.tag & CONSTRUCTED == 0 {
            return Ok(Cow::Borrowed(self.content));
        }
        let mut out = Vec::new();
        let mut children = self.children()?;
        while !children.is_empty() {
            let segment = children.next_tlv()?;
            if segment.tag & !CONSTRUCTED != OCTET_STRING {
                return malformed("a segment of an OCTET STRING that is not one");
            }
            out.extend_from_slice(&segment.octets()?);
        }
        Ok(Cow::Owned(out))
    }

    pub(crate) fn oid(&self) -> Result<ObjectIdentifier, Pkcs12Error> {
        if self.tag != OID {
            return Err(Pkcs12Error::UnexpectedTag {
                expected: OID,
                found: self.tag,
            });
        }
        ObjectIdentifier::from_bytes(self.content)
            .map_err(|_| Pkcs12Error::Malformed("an object identifier"))
    }

    /// A non-negative INTEGER that fits in 32 bits.
    pub(crate) fn small_uint(&self) -> Result<u32, Pkcs12Error> {
        if self.tag != INTEGER {
            return Err(Pkcs12Error::UnexpectedTag {
                expected: INTEGER,
                found: self.tag,
            });
        }
        let bytes = self.content;
        match bytes.first() {
            None => return malformed("an empty INTEGER"),
            Some(b) if b & 0x80 != 0 => return malformed("a negative INTEGER"),
            _ => {}
        }
        let significant = match bytes.iter().position(|b| *b != 0) {
            Some(start) => bytes.get(start..).unwrap_or_default(),
            None => &[],
        };
        if significant.len() > 4 {
            return malformed("an INTEGER too large");
        }
        Ok(significant
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    /// The text of a BMPString (UTF-16 big-endian).
    pub(crate) fn bmp_text(&self) -> Result<String, Pkcs12Error> {
        if !self.content.len().is_multiple_of(2) {
            return malformed("a BMPString of odd length");
        }
        let units: Vec<u16> = self
            .content
            .chunks_exact(2)
            .map(|c| {
                u16::from_be_bytes([
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ])
            })
            .collect();
        String::from_utf16(&units).map_err(|_| Pkcs12Error::Malformed("a BMPString"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_indefinite_lengths_and_segmented_octet_strings() {
        // SEQUENCE (indefinite) { [0] (indefinite) { OCTET STRING "ab", OCTET STRING "c" }, INTEGER 1024 }
        let ber = [
            0x30, 0x80, 0xa0, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0, 0, 0x02, 0x02,
            0x04, 0x00, 0, 0,
        ];
        let mut top = Reader::new(&ber);
        let seq = top.expect(SEQUENCE).unwrap();
        top.finish().unwrap();
        let mut inside = seq.children().unwrap();
        let implicit = inside.expect(CONTEXT_0).unwrap();
        assert_eq!(&*implicit.octets().unwrap(), b"abc");
        assert_eq!(inside.expect(INTEGER).unwrap().small_uint().unwrap(), 1024);
        inside.finish().unwrap();
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        for bad in [
            &[0x30, 0x05, 0x02][..],             // longer than the input
            &[0x04, 0x80, 0, 0][..],             // indefinite primitive
            &[0x30, 0x80, 0x02, 0x01, 0x01][..], // no end-of-contents
            &[0x1f, 0x01, 0x00][..],             // high tag number
            &[0x30, 0x85, 1, 0, 0, 0, 0][..],    // five length octets
        ] {
            let mut r = Reader::new(bad);
            assert!(
                r.next_tlv().and_then(|t| t.octets().map(|_| ())).is_err(),
                "{bad:?}"
            );
        }
        // Deep nesting stops at the bound instead of exhausting the stack.
        let mut deep = vec![];
        for _ in 0..1000 {
            deep.extend([0x30, 0x80]);
        }
        assert!(Reader::new(&deep).next_tlv().is_err());
        assert_eq!(
            Tlv {
                tag: INTEGER,
                content: &[0x00, 0x80],
                depth: 0
            }
            .small_uint()
            .unwrap(),
            128
        );
        assert!(Tlv {
            tag: INTEGER,
            content: &[0x80],
            depth: 0
        }
        .small_uint()
        .is_err());
    }
}
