//! AES-GCM ESP test vectors from draft-mcgrew-gcm-test-01 §4 ("Test Cases for
//! the use of Galois/Counter Mode (GCM) ... in IPsec ESP", McGrew, 2009),
//! transcribed as hex. Test cases are numbered as in the draft; the 192-bit
//! key case (7) and the GMAC cases are left out because we do not offer them.
//! Case 4 uses SPI 0, which an SA rejects (RFC 4303 §2.1), so it is only run
//! against the crypto core.

pub(crate) struct Vector {
    pub name: &'static str,
    /// AES key (without salt).
    pub key: &'static str,
    /// RFC 4106 salt: first 4 bytes of the draft's "nonce".
    pub salt: &'static str,
    /// Explicit IV: last 8 bytes of the draft's "nonce".
    pub iv: &'static str,
    pub spi: u32,
    /// Full sequence number; with `esn` the high half is only in the AAD.
    pub seq: u64,
    pub esn: bool,
    pub aad: &'static str,
    /// Inner packet || padding || pad length || next header.
    pub plaintext: &'static str,
    /// Ciphertext || ICV.
    pub sealed: &'static str,
    /// The whole ESP packet on the wire.
    pub packet: &'static str,
}

pub(crate) const VECTORS: &[Vector] = &[
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 1 (AES-128, ESN, SPI 0x4321)",
        key: "4c80cdefbb5d10da906ac73c3613a634",
        salt: "2e443b68",
        iv: "4956ed7e3b244cfe",
        spi: 0x0000_4321,
        seq: 0x8765_4321_0000_0000,
        esn: true,
        aad: "000043218765432100000000",
        plaintext: concat!(
            "45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000",
            "00000000045f736970045f756470037369700963796265726369747902646b00",
            "0021000101020201"
        ),
        sealed: concat!(
            "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34",
            "cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce",
            "61bc17d768fd9732459018148f6cbe722fd04796562dfdb4"
        ),
        packet: concat!(
            "00004321000000004956ed7e3b244cfe",
            "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34",
            "cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce",
            "61bc17d768fd9732459018148f6cbe722fd04796562dfdb4"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 2 (AES-128, SPI 0xa5f8, seq 10)",
        key: "feffe9928665731c6d6a8f9467308308",
        salt: "cafebabe",
        iv: "facedbaddecaf888",
        spi: 0x0000_a5f8,
        seq: 0x0a,
        esn: false,
        aad: "0000a5f80000000a",
        plaintext: concat!(
            "4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100",
            "0001000000000000037369700963796265726369747902646b00000100010001"
        ),
        sealed: concat!(
            "deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c",
            "3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1",
            "83b70d3aa8bc6ee4c309e9d85a41ad4a"
        ),
        packet: concat!(
            "0000a5f80000000afacedbaddecaf888",
            "deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c",
            "3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1",
            "83b70d3aa8bc6ee4c309e9d85a41ad4a"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 3 (AES-256, SPI 0x4a2cbfe3, seq 2)",
        key: "abbccddef00112233445566778899aababbccddef00112233445566778899aab",
        salt: "11223344",
        iv: "0102030405060708",
        spi: 0x4a2c_bfe3,
        seq: 2,
        esn: false,
        aad: "4a2cbfe300000002",
        plaintext: concat!(
            "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000",
            "7002400020bf0000020405b40101040201020201"
        ),
        sealed: concat!(
            "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763",
            "748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49",
            "15956c96"
        ),
        packet: concat!(
            "4a2cbfe3000000020102030405060708",
            "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763",
            "748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49",
            "15956c96"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 4 (AES-128, all-zero key, SPI 0)",
        key: "00000000000000000000000000000000",
        salt: "00000000",
        iv: "0000000000000000",
        spi: 0,
        seq: 1,
        esn: false,
        aad: "0000000000000001",
        plaintext: concat!(
            "4500003c99c500008001cb7a40679318010101010800075c0200440061626364",
            "65666768696a6b6c6d6e6f707172737475767761626364656667686901020201"
        ),
        sealed: concat!(
            "4688daf2f973a392732909c331d56d60f694abaa414b5e7ff5fdcdfff5e9a284",
            "456476492719ffb64de7d9dca1e1d894bc3bd57873ed4d181d19d4d5c8c18af3",
            "f821d496eeb096e98ad2b69e4799c71d"
        ),
        packet: concat!(
            "00000000000000010000000000000000",
            "4688daf2f973a392732909c331d56d60f694abaa414b5e7ff5fdcdfff5e9a284",
            "456476492719ffb64de7d9dca1e1d894bc3bd57873ed4d181d19d4d5c8c18af3",
            "f821d496eeb096e98ad2b69e4799c71d"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 5 (AES-128, ESN, SPI 0x42f67e3f)",
        key: "3de09874b388e6491988d0c3607eae1f",
        salt: "57690e43",
        iv: "4e280000a2fca1a3",
        spi: 0x42f6_7e3f,
        seq: 0x1010_1010_1010_1010,
        esn: true,
        aad: "42f67e3f1010101010101010",
        plaintext: concat!(
            "4500003c99c300008001cb7c40679318010101010800085c0200430061626364",
            "65666768696a6b6c6d6e6f707172737475767761626364656667686901020201"
        ),
        sealed: concat!(
            "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c357917",
            "65acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320a",
            "e0d731cc978ecafaeae88f00e80d6e48"
        ),
        packet: concat!(
            "42f67e3f101010104e280000a2fca1a3",
            "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c357917",
            "65acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320a",
            "e0d731cc978ecafaeae88f00e80d6e48"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 8 (AES-128, ESN, SPI 0x100, seq 1)",
        key: "abbccddef00112233445566778899aab",
        salt: "decaf888",
        iv: "cafedebaceface74",
        spi: 0x0000_0100,
        seq: 1,
        esn: true,
        aad: "000001000000000000000001",
        plaintext: concat!(
            "4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d5",
            "00004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec95",
            "9b6266c04722b14923010101"
        ),
        sealed: concat!(
            "18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f",
            "9190feebaf2cb01984e65863965d7472b79da345e0e780191f0d2f0e0f496c22",
            "6f2127b27db35724e7845d68651f57e65f354f75ff17015769623436"
        ),
        packet: concat!(
            "0000010000000001cafedebaceface74",
            "18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f",
            "9190feebaf2cb01984e65863965d7472b79da345e0e780191f0d2f0e0f496c22",
            "6f2127b27db35724e7845d68651f57e65f354f75ff17015769623436"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 9 (AES-256, ESN, SPI 0x17405e67)",
        key: "abbccddef00112233445566778899aababbccddef00112233445566778899aab",
        salt: "73616c74",
        iv: "616e640169766563",
        spi: 0x1740_5e67,
        seq: 0x156f_3126_dd0d_b99b,
        esn: true,
        aad: "17405e67156f3126dd0db99b",
        plaintext: concat!(
            "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb712602",
            "50101f646d540001"
        ),
        sealed: concat!(
            "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57f",
            "f4d3a31ce673119e451626c2415771e3b7eebca614c89b35"
        ),
        packet: concat!(
            "17405e67dd0db99b616e640169766563",
            "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57f",
            "f4d3a31ce673119e451626c2415771e3b7eebca614c89b35"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 12 (AES-128, SPI 0x335467ae, seq 2^32-1)",
        key: "7d773d00c144c525ac619d18c84a3f47",
        salt: "d9664267",
        iv: "43457e9182443bc6",
        spi: 0x3354_67ae,
        seq: 0xffff_ffff,
        esn: false,
        aad: "335467aeffffffff",
        plaintext: "01020201",
        sealed: "437f866bcb3f699fe9b0822bac961c4504bef270",
        packet: concat!(
            "335467aeffffffff43457e9182443bc6",
            "437f866bcb3f699fe9b0822bac961c4504bef270"
        ),
    },
    Vector {
        name: "draft-mcgrew-gcm-test-01 Test Case 14 (AES-256, ESN, seq 2^64-1)",
        key: "6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961",
        salt: "7475726e",
        iv: "333021696765746d",
        spi: 0x796b_6963,
        seq: 0xffff_ffff_ffff_ffff,
        esn: true,
        aad: "796b6963ffffffffffffffff",
        plaintext: concat!(
            "45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364",
            "65666768696a6b6c6d6e6f707172737401020201"
        ),
        sealed: concat!(
            "f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a86",
            "4cd3d78ca4ae68a32b42458fb57dbe821dcc63b9d0937ba2945f669368661a32",
            "9fb4c053"
        ),
        packet: concat!(
            "796b6963ffffffff333021696765746d",
            "f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a86",
            "4cd3d78ca4ae68a32b42458fb57dbe821dcc63b9d0937ba2945f669368661a32",
            "9fb4c053"
        ),
    },
];
