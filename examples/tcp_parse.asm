# kbpf example: parse Ethernet/IPv4/TCP, hash the flow's 5-tuple and pick one of 8 backends.
# Returns 100 + backend for TCP over IPv4 (no IP options), XDP_PASS (2) for anything else.
# Calling convention of `kbpf run`: r1 = packet, r2 = its length.
    mov %r6, %r1
    mov %r0, 2
    jlt %r2, 54, pass          # 14 (Ethernet) + 20 (IPv4) + 20 (TCP)
    ldxh %r3, [%r6+12]         # EtherType, read little-endian
    jne %r3, 0x0008, pass      # 0x0800 (IPv4) in network order
    ldxb %r3, [%r6+14]
    jne %r3, 0x45, pass        # IPv4, 20-byte header
    ldxb %r7, [%r6+23]
    jne %r7, 6, pass           # TCP
    lddw %r0, 0x9e3779b9       # hash seed
    ldxw %r3, [%r6+26]         # source address
    be32 %r3
    xor32 %r0, %r3
    mul32 %r0, 0x01000193
    mov32 %r4, %r0
    rsh32 %r4, 15
    xor32 %r0, %r4
    ldxw %r3, [%r6+30]         # destination address
    be32 %r3
    xor32 %r0, %r3
    mul32 %r0, 0x01000193
    mov32 %r4, %r0
    rsh32 %r4, 15
    xor32 %r0, %r4
    ldxw %r3, [%r6+34]         # source port << 16 | destination port
    be32 %r3
    xor32 %r0, %r3
    mul32 %r0, 0x01000193
    mov32 %r4, %r0
    rsh32 %r4, 15
    xor32 %r0, %r4
    xor32 %r0, %r7             # protocol
    mul32 %r0, 0x01000193
    mov32 %r4, %r0
    rsh32 %r4, 15
    xor32 %r0, %r4
    mod32 %r0, 8
    add32 %r0, 100
pass:
    exit
