//! DNS messages for an A query (RFC 1035 §4.1): building the query, checking
//! that a reply answers it, and reading the IPv4 addresses out of the reply.
//!
//! Pure functions over bytes, so every rule is tested without a socket. A
//! reply that is not an answer to our query, or is broken, is an [`Error`],
//! never a panic: it may come from anyone who can guess our port.

use core::net::Ipv4Addr;

use shipworm_core::wire::{Error, Result};

/// RR type A, a host address (RFC 1035 §3.2.2).
const TYPE_A: u16 = 1;
/// RR type CNAME, the canonical name of an alias (RFC 1035 §3.2.2).
const TYPE_CNAME: u16 = 5;
/// Class IN, the Internet (RFC 1035 §3.2.4).
const CLASS_IN: u16 = 1;

/// Length of the message header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// Longest name in wire form, the final zero included (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Header flag QR: the message is a response (RFC 1035 §4.1.1).
const FLAG_QR: u16 = 0x8000;
/// Header flag TC: the server cut the message to fit a UDP datagram.
const FLAG_TC: u16 = 0x0200;
/// Header flag RD: ask the server to resolve the name recursively.
const FLAG_RD: u16 = 0x0100;
/// The opcode bits; zero is a standard query.
const OPCODE_MASK: u16 = 0x7800;
/// The RCODE bits.
const RCODE_MASK: u16 = 0x000f;

/// RCODE 3: the name does not exist (RFC 1035 §4.1.1).
const RCODE_NXDOMAIN: u16 = 3;
/// RCODE 2: the server could not answer (RFC 1035 §4.1.1).
pub const RCODE_SERVFAIL: u16 = 2;

/// Largest reply over UDP without EDNS (RFC 1035 §4.2.1); a server cuts
/// anything longer and sets TC.
pub const UDP_MAX: usize = 512;

/// A domain name in wire form: length-prefixed labels ending with the
/// root's zero length. Held inline (no allocation): it is at most
/// [`MAX_NAME`] bytes.
#[derive(Clone)]
pub struct Name {
    /// Bytes of `wire` in use.
    len: u8,
    wire: [u8; MAX_NAME],
}

impl Name {
    /// The name written `host` (labels separated by dots, no final dot).
    pub fn new(host: &[u8]) -> Result<Name> {
        Name::dotted(&[host])
    }

    /// The name written `host` in the search domain `domain` (both dotted
    /// as in [`Name::new`]): the one path for names with and without one.
    pub fn qualified(host: &[u8], domain: &[u8]) -> Result<Name> {
        Name::dotted(&[host, domain])
    }

    /// The labels of each dotted text in `parts`, in order, then the root.
    ///
    /// Refuses an empty label and sizes beyond RFC 1035 §2.3.4; any other
    /// byte may stand in a label.
    fn dotted(parts: &[&[u8]]) -> Result<Name> {
        let mut name = Name::root();
        for part in parts {
            for label in part.split(|&b| b == b'.') {
                if label.is_empty() || label.len() > MAX_LABEL {
                    return Err(Error::Malformed);
                }
                name.push(label)?;
            }
        }
        name.push(&[])?;
        Ok(name)
    }

    /// No labels yet: not even the root's zero.
    fn root() -> Name {
        Name {
            len: 0,
            wire: [0; MAX_NAME],
        }
    }

    /// Append one label (length byte then its bytes); the caller has
    /// checked it is at most [`MAX_LABEL`] long.
    fn push(&mut self, label: &[u8]) -> Result<()> {
        let start = usize::from(self.len);
        let end = start + 1 + label.len();
        let Some((len, rest)) = self
            .wire
            .get_mut(start..end)
            .and_then(<[u8]>::split_first_mut)
        else {
            return Err(Error::Malformed);
        };
        // At most 63, and `end` at most MAX_NAME (255): both fit a byte.
        *len = label.len() as u8;
        rest.copy_from_slice(label);
        self.len = end as u8;
        Ok(())
    }

    /// The name in wire form.
    fn wire(&self) -> &[u8] {
        self.wire.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// Names compare without regard to ASCII case (RFC 4343 §3). Length bytes
/// are at most 63, below every letter, so folding never touches them.
impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.wire().eq_ignore_ascii_case(other.wire())
    }
}

/// The query for the A records of `name`, with recursion desired and
/// message ID `id` (RFC 1035 §4.1.1, §4.1.2).
pub fn query(id: u16, name: &Name) -> Vec<u8> {
    [
        &id.to_be_bytes()[..],
        &FLAG_RD.to_be_bytes(),
        // QDCOUNT 1; ANCOUNT, NSCOUNT, ARCOUNT 0.
        &[0, 1, 0, 0, 0, 0, 0, 0],
        name.wire(),
        &TYPE_A.to_be_bytes(),
        &CLASS_IN.to_be_bytes(),
    ]
    .concat()
}

/// What a reply to our query says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The name exists; these are its IPv4 addresses, after any CNAME
    /// chain in the answer (none: the name has no A record).
    Addresses(Vec<Ipv4Addr>),
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// The server gave up on the query with this RCODE (SERVFAIL,
    /// REFUSED, …), or the answer was cut (TC) before any A record.
    Failed(u16),
}

/// Check that `msg` answers the A query `id` for `name` and read it.
///
/// [`Error::Unrecognized`] for a message that is not our answer: another
/// ID, not a response, not a standard query, or another question (a late or
/// forged reply). [`Error::Truncated`] / [`Error::Malformed`] for a broken
/// one, including a loop of compression pointers or of CNAMEs.
///
/// A reply with TC set (RFC 1035 §4.1.1) keeps the records that arrived
/// whole: asking again over TCP for the rest is not worth it here, as a
/// Teredo server name has a handful of A records and one is enough.
pub fn parse_reply(msg: &[u8], id: u16, name: &Name) -> Result<Reply> {
    let header = msg.get(..HEADER_LEN).ok_or(Error::Truncated)?;
    // Every field lies inside the 12 bytes just checked.
    let field = |at: usize| read_u16(header, at).unwrap_or_default();
    let flags = field(2);
    if field(0) != id || flags & FLAG_QR == 0 || flags & OPCODE_MASK != 0 || field(4) != 1 {
        return Err(Error::Unrecognized);
    }
    let (question, pos) = read_name(msg, HEADER_LEN)?;
    let qtype = read_u16(msg, pos)?;
    let qclass = read_u16(msg, pos + 2)?;
    if question != *name || qtype != TYPE_A || qclass != CLASS_IN {
        return Err(Error::Unrecognized);
    }
    match flags & RCODE_MASK {
        0 => {}
        RCODE_NXDOMAIN => return Ok(Reply::NoSuchName),
        rcode => return Ok(Reply::Failed(rcode)),
    }
    let answers = Answers {
        msg,
        start: pos + 4,
        count: field(6),
        cut: flags & FLAG_TC != 0,
    };
    let addrs = answers.addresses(name)?;
    if answers.cut && addrs.is_empty() {
        return Ok(Reply::Failed(RCODE_SERVFAIL));
    }
    Ok(Reply::Addresses(addrs))
}

/// The data of an answer record this resolver uses.
///
/// A short-lived value on the stack, handed to one callback: boxing the
/// name would allocate per CNAME for nothing (and cost code on routers).
#[expect(clippy::large_enum_variant, reason = "a short-lived stack value")]
enum Data {
    /// An A record's address.
    A(Ipv4Addr),
    /// A CNAME record's target.
    Cname(Name),
    /// Any other type or class.
    Other,
}

/// The answer section of a reply: `count` records from `start` of `msg`,
/// of which only those that came whole count when `cut` (TC) is set.
struct Answers<'a> {
    msg: &'a [u8],
    start: usize,
    count: u16,
    cut: bool,
}

impl Answers<'_> {
    /// The A records of `name`, or of the name its CNAME chain ends at
    /// (RFC 1034 §3.6.2: a recursive server answers an alias with the
    /// CNAMEs followed and the target's records).
    ///
    /// Records for other names are ignored: a server has no business
    /// answering them, and they must not be taken for `name`'s. Each pass
    /// over the records follows one CNAME (their order is free), so nothing
    /// is kept but the addresses.
    fn addresses(&self, name: &Name) -> Result<Vec<Ipv4Addr>> {
        let mut target = name.clone();
        let mut hops = 0;
        loop {
            let mut addrs = Vec::new();
            let mut alias = None;
            let records = self.each(&mut |owner, data| {
                if *owner != target {
                    return;
                }
                match data {
                    Data::A(addr) => addrs.push(addr),
                    // The first CNAME of a name, as a resolver reads them.
                    Data::Cname(next) if alias.is_none() => alias = Some(next),
                    _ => {}
                }
            })?;
            let Some(next) = alias else { return Ok(addrs) };
            // A chain longer than the records that make it must revisit a
            // name.
            hops += 1;
            if hops > records {
                return Err(Error::Malformed);
            }
            target = next;
        }
    }

    /// Read the records in order and give each to `f` with its owner name;
    /// returns how many there were.
    fn each(&self, f: &mut dyn FnMut(&Name, Data)) -> Result<usize> {
        let mut pos = self.start;
        for n in 0..self.count {
            match read_record(self.msg, pos) {
                Ok((owner, data, next)) => {
                    f(&owner, data);
                    pos = next;
                }
                Err(_) if self.cut => return Ok(usize::from(n)),
                Err(e) => return Err(e),
            }
        }
        Ok(usize::from(self.count))
    }
}

/// Read the resource record at `pos` (RFC 1035 §4.1.3); returns its owner,
/// its data and where the next one starts.
fn read_record(msg: &[u8], pos: usize) -> Result<(Name, Data, usize)> {
    let (owner, pos) = read_name(msg, pos)?;
    let rtype = read_u16(msg, pos)?;
    let class = read_u16(msg, pos + 2)?;
    // TTL at pos + 4: unused, the caller resolves again when it needs to.
    let rdlen = usize::from(read_u16(msg, pos + 8)?);
    let start = pos + 10;
    let rdata = msg.get(start..start + rdlen).ok_or(Error::Truncated)?;
    let data = match (rtype, class) {
        (TYPE_A, CLASS_IN) => {
            let octets: [u8; 4] = rdata.try_into().map_err(|_| Error::Malformed)?;
            Data::A(Ipv4Addr::from(octets))
        }
        (TYPE_CNAME, CLASS_IN) => {
            let (target, end) = read_name(msg, start)?;
            if end != start + rdlen {
                return Err(Error::Malformed);
            }
            Data::Cname(target)
        }
        _ => Data::Other,
    };
    Ok((owner, data, start + rdlen))
}

/// Read the (possibly compressed) name at `pos` (RFC 1035 §4.1.4); returns
/// it and where the bytes after it start.
///
/// A compression pointer must point before the labels it ends (RFC 1035
/// §4.1.4 points at a prior occurrence): every jump then goes strictly
/// backwards, so a pointer loop is refused instead of followed forever.
fn read_name(msg: &[u8], pos: usize) -> Result<(Name, usize)> {
    let mut name = Name::root();
    let mut pos = pos;
    let mut run_start = pos;
    let mut after = None;
    loop {
        let len = *msg.get(pos).ok_or(Error::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len));
                name.push(label.ok_or(Error::Truncated)?)?;
                pos += 1 + usize::from(len);
                if len == 0 {
                    return Ok((name, after.unwrap_or(pos)));
                }
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(Error::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target >= run_start {
                    return Err(Error::Malformed);
                }
                after.get_or_insert(pos + 2);
                pos = target;
                run_start = target;
            }
            // 0x40 and 0x80: extended label types (RFC 6891 §5), unused.
            _ => return Err(Error::Malformed),
        }
    }
}

/// The big-endian 16-bit field at `pos`.
fn read_u16(msg: &[u8], pos: usize) -> Result<u16> {
    let bytes = msg.get(pos..pos + 2).ok_or(Error::Truncated)?;
    Ok(u16::from_be_bytes(
        bytes.try_into().map_err(|_| Error::Truncated)?,
    ))
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    /// The query for `teredo.remlab.net`, ID 0xbeef.
    const QUERY: [u8; 35] = [
        0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
        6, b't', b'e', b'r', b'e', b'd', b'o', 6, b'r', b'e', b'm', b'l', b'a', b'b', 3, b'n',
        b'e', b't', 0, // name
        0x00, 0x01, 0x00, 0x01, // A, IN
    ];

    fn name() -> Name {
        Name::new(b"teredo.remlab.net").unwrap()
    }

    /// A reply to [`QUERY`] (question at offset 12) with `flags`,
    /// `ancount` and the answer bytes.
    fn reply(flags: u16, ancount: u16, answers: &[u8]) -> Vec<u8> {
        let mut msg = QUERY.to_vec();
        msg[2..4].copy_from_slice(&flags.to_be_bytes());
        msg[6..8].copy_from_slice(&ancount.to_be_bytes());
        msg.extend_from_slice(answers);
        msg
    }

    /// An A record of the question's name (pointer to offset 12).
    fn a_record(addr: [u8; 4]) -> Vec<u8> {
        let mut rr = vec![0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4];
        rr.extend_from_slice(&addr);
        rr
    }

    #[test]
    fn construct_query() {
        assert_eq!(query(0xbeef, &name()), QUERY);
    }

    #[test]
    fn names_refused() {
        for bad in ["", ".", "a..b", "a.", &"x".repeat(64)] {
            assert_eq!(
                Name::new(bad.as_bytes()).err(),
                Some(Error::Malformed),
                "{bad:?}"
            );
        }
        // 127 one-letter labels: 254 bytes with the root, the largest name.
        let longest = ["a"; 127].join(".");
        assert_eq!(Name::new(longest.as_bytes()).unwrap().wire().len(), 255);
        let too_long = ["a"; 128].join(".");
        assert!(Name::new(too_long.as_bytes()).is_err());
        assert!(Name::new("x".repeat(63).as_bytes()).is_ok());
    }

    #[test]
    fn names_compare_without_case() {
        assert!(Name::new(b"Teredo.REMLAB.net").unwrap() == name());
        assert!(Name::new(b"teredo.remlab.org").unwrap() != name());
        assert!(Name::new(b"teredo.remlab").unwrap() != name());
    }

    #[test]
    fn deconstruct_answer() {
        // QR RD RA, NOERROR: two A records, an AAAA and an A of another
        // name (ignored).
        let mut answers = a_record([192, 0, 2, 1]);
        answers.extend(a_record([192, 0, 2, 2]));
        answers.extend([0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        answers.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        answers.extend([3, b'n', b's', b'1', 0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        answers.extend([203, 0, 113, 9]);
        let msg = reply(0x8180, 4, &answers);
        assert_eq!(
            parse_reply(&msg, 0xbeef, &name()),
            Ok(Reply::Addresses(vec![
                Ipv4Addr::new(192, 0, 2, 1),
                Ipv4Addr::new(192, 0, 2, 2)
            ]))
        );
    }

    #[test]
    fn follows_cname_chain() {
        // teredo.remlab.net CNAME a.remlab.net, a.remlab.net CNAME b.net
        // (given in reverse order), b.net A 192.0.2.5.
        let mut answers = Vec::new();
        // Offset 35: "a" + pointer to "remlab.net" (offset 19).
        let a_at = 35 + 12;
        answers.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'a', 0xc0, 19]);
        // a.remlab.net CNAME b + pointer to "net" (offset 26).
        answers.extend([0xc0, a_at as u8, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4]);
        answers.extend([1, b'b', 0xc0, 26]);
        let b_at = (35 + answers.len() - 4) as u8;
        answers.extend([0xc0, b_at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 5]);
        // An A record of the alias itself must not count.
        answers.extend(a_record([198, 51, 100, 1]));
        let msg = reply(0x8180, 4, &answers);
        assert_eq!(
            parse_reply(&msg, 0xbeef, &name()),
            Ok(Reply::Addresses(vec![Ipv4Addr::new(192, 0, 2, 5)]))
        );
    }

    #[test]
    fn cname_loop_refused() {
        // teredo.remlab.net CNAME x.net, x.net CNAME teredo.remlab.net.
        let mut answers = vec![0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 0xc0, 26];
        answers.extend([0xc0, 47, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
        let msg = reply(0x8180, 2, &answers);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Malformed));
    }

    #[test]
    fn rcodes() {
        let msg = reply(0x8183, 0, &[]);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Ok(Reply::NoSuchName));
        let msg = reply(0x8182, 0, &[]);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Ok(Reply::Failed(2)));
        let msg = reply(0x8185, 0, &[]);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Ok(Reply::Failed(5)));
        // NOERROR without records: the name has no IPv4 address.
        let msg = reply(0x8180, 0, &[]);
        assert_eq!(
            parse_reply(&msg, 0xbeef, &name()),
            Ok(Reply::Addresses(vec![]))
        );
    }

    #[test]
    fn not_our_answer() {
        let good = reply(0x8180, 1, &a_record([192, 0, 2, 1]));
        assert!(parse_reply(&good, 0xbeef, &name()).is_ok());
        // Another ID, a query rather than a response, opcode 2 (STATUS).
        assert_eq!(
            parse_reply(&good, 0xbeee, &name()),
            Err(Error::Unrecognized)
        );
        let mut msg = good.clone();
        msg[2] = 0x01;
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Unrecognized));
        msg[2] = 0x91;
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Unrecognized));
        // Another name, another type, another class, two questions.
        let other = Name::new(b"teredo.remlab.org").unwrap();
        assert_eq!(parse_reply(&good, 0xbeef, &other), Err(Error::Unrecognized));
        for (at, value) in [(32, 28), (34, 3), (5, 2)] {
            let mut msg = good.clone();
            msg[at] = value;
            assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Unrecognized));
        }
    }

    #[test]
    fn broken_answers() {
        let good = reply(0x8180, 1, &a_record([192, 0, 2, 1]));
        // Every cut before the end.
        for len in 0..good.len() {
            assert!(parse_reply(&good[..len], 0xbeef, &name()).is_err(), "{len}");
        }
        // An A record of 5 bytes.
        let mut rr = a_record([192, 0, 2, 1]);
        rr[11] = 5;
        rr.push(0);
        let msg = reply(0x8180, 1, &rr);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Malformed));
        // More records announced than present.
        let msg = reply(0x8180, 2, &a_record([192, 0, 2, 1]));
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Truncated));
        // A CNAME whose name runs past its RDLENGTH.
        let rr = [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 1, 0xc0, 12];
        let msg = reply(0x8180, 1, &rr);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Malformed));
    }

    #[test]
    fn truncated_reply_keeps_whole_records() {
        let mut answers = a_record([192, 0, 2, 1]);
        answers.extend(&a_record([192, 0, 2, 2])[..7]);
        let msg = reply(0x8380, 2, &answers);
        assert_eq!(
            parse_reply(&msg, 0xbeef, &name()),
            Ok(Reply::Addresses(vec![Ipv4Addr::new(192, 0, 2, 1)]))
        );
        // Nothing whole: a failure, not "no address".
        let msg = reply(0x8380, 1, &answers[16..]);
        assert_eq!(
            parse_reply(&msg, 0xbeef, &name()),
            Ok(Reply::Failed(RCODE_SERVFAIL))
        );
        // Without TC the same cut is an error.
        let msg = reply(0x8180, 2, &answers);
        assert_eq!(parse_reply(&msg, 0xbeef, &name()), Err(Error::Truncated));
    }

    #[test]
    fn compression_pointers() {
        // At 0: "net"; at 5: "remlab" + pointer to 0; at 14: pointer to 5.
        let msg = [
            3, b'n', b'e', b't', 0, 6, b'r', b'e', b'm', b'l', b'a', b'b', 0xc0, 0, 0xc0, 5,
        ];
        let (n, next) = read_name(&msg, 14).unwrap();
        assert!(n == Name::new(b"remlab.net").unwrap());
        assert_eq!(next, 16);
        let (n, next) = read_name(&msg, 5).unwrap();
        assert!(n == Name::new(b"remlab.net").unwrap());
        assert_eq!(next, 14);
        // Pointing at itself, forwards, or into the labels it ends.
        assert_eq!(read_name(&[0xc0, 0], 0).err(), Some(Error::Malformed));
        assert_eq!(read_name(&[0xc0, 2, 0], 0).err(), Some(Error::Malformed));
        let inner = [1, b'a', 1, b'b', 0xc0, 2];
        assert_eq!(read_name(&inner, 0).err(), Some(Error::Malformed));
        // A loop 4 -> 0 -> (2) -> 0: the second jump is refused.
        let pair = [1, b'a', 0xc0, 0, 0xc0, 0];
        assert_eq!(read_name(&pair, 4).err(), Some(Error::Malformed));
        // Extended label types, a cut pointer, a cut label.
        assert_eq!(read_name(&[0x41, 0], 0).err(), Some(Error::Malformed));
        assert_eq!(read_name(&[0x81, 0], 0).err(), Some(Error::Malformed));
        assert_eq!(read_name(&[0xc0], 0).err(), Some(Error::Truncated));
        assert_eq!(read_name(&[3, b'n'], 0).err(), Some(Error::Truncated));
        assert_eq!(read_name(&[], 0).err(), Some(Error::Truncated));
    }

    #[test]
    fn overlong_compressed_name_refused() {
        // 200 labels "a", each followed by a pointer to the one before:
        // legal backward jumps, but a name of 401 bytes.
        let mut msg = vec![1, b'a', 0];
        for i in 0..200 {
            let prev = if i == 0 { 0 } else { 3 + (i - 1) * 4 };
            msg.extend([1, b'a', 0xc0 | (prev >> 8) as u8, prev as u8]);
        }
        let last = msg.len() - 4;
        assert_eq!(read_name(&msg, last).err(), Some(Error::Malformed));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_reply(&bytes, 0xbeef, &name());
            for pos in 0..bytes.len().min(64) {
                let _ = read_name(&bytes, pos);
            }
        }

        #[test]
        fn arbitrary_answers_never_panic(
            flags in any::<u16>(),
            ancount in 0u16..40,
            tail in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            // Past the ID and question checks, into the records.
            let _ = parse_reply(&reply(flags | FLAG_QR, ancount, &tail), 0xbeef, &name());
        }

        #[test]
        fn query_round_trip(labels in prop::collection::vec("[a-zA-Z0-9-]{1,63}", 1..4), id in any::<u16>()) {
            let host = labels.join(".");
            let name = Name::new(host.as_bytes()).unwrap();
            // A query with QR set reads back as an answer without records.
            let mut msg = query(id, &name);
            msg[2] |= 0x80;
            prop_assert_eq!(parse_reply(&msg, id, &name), Ok(Reply::Addresses(vec![])));
            prop_assert_eq!(&msg[HEADER_LEN..msg.len() - 4], name.wire());
        }
    }
}
