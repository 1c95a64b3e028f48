import struct, random
M=(1<<64)-1
K=0x9e3779b97f4a7c15
def rotl(x,r): return ((x<<r)|(x>>(64-r)))&M
def checksum(h48):
    w=[struct.unpack_from('<Q',h48,o)[0] for o in (0,8,16,24,32,40)]
    w[1]&=0xffffffff
    h=0x6a09e667f3bcc908
    for x in w: h=rotl(((h^x)*K)&M,29)
    h=((h^(h>>31))*K)&M
    return (h^(h>>32))&0xffffffff
def frame(kind=1,flags=0,payload=b'',route=7,reserved=0,seq=1,ts=2,corr=0,version=1,magic=b'DNDM',length=None,fix=True):
    L=len(payload) if length is None else length
    h=bytearray(magic+bytes([version,kind])+struct.pack('<HII',flags,L,0)+struct.pack('<IIQQQ',route,reserved,seq,ts,corr))
    if fix: struct.pack_into('<I',h,12,checksum(bytes(h)))
    pad=(-len(payload))%16
    return bytes(h)+payload+b'\0'*pad
files={
 'ok_two_frames.bin': frame(payload=b'hello')+frame(kind=2,payload=b'ctl'),
 'ok_truncated_tail.bin': frame(payload=b'hello')+frame(payload=b'x'*40)[:30],
 'ok_invalid_payload.bin': frame(payload=bytes([0xff])*64),
 'ok_empty.bin': b'',
 'bad_magic.bin': frame(magic=b'DNDX'),
 'bad_version.bin': frame(version=2),
 'bad_checksum.bin': frame(payload=b'abc',fix=False),
 'unknown_kind.bin': frame(kind=0),
 'unknown_kind_high.bin': frame(kind=200),
 'reserved_flags.bin': frame(flags=0x0001),
 'reserved_field.bin': frame(reserved=5),
 'too_large.bin': frame(length=0xfffffff0),
 'too_large_max_u32.bin': frame(length=0xffffffff),
 'garbage_after_valid.bin': frame(payload=b'ok')+bytes(random.Random(1).randrange(256) for _ in range(100)),
 'http_request.bin': b'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
}
for n,b in files.items(): open(n,'wb').write(b)
# cross-check with a known value printed for the Rust test
print(hex(checksum(bytes(frame(payload=b'hello')[:48]))))
