import Testing
@testable import ApinizerSandbox

@Suite("Field rules")
struct FieldRulesTests {
    @Test(arguments: [
        ("2024-12-31T23:59:59.000Z", "2024-12-31T23:59:59.000Z"),
        ("2024-12-31T23:59:59Z", "2024-12-31T23:59:59.000Z"),
        ("2024-12-31t23:59:59z", "2024-12-31T23:59:59.000Z"),
        ("2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.500Z"),
        ("2024-01-01T00:00:00.123456Z", "2024-01-01T00:00:00.123Z"),
        ("2024-01-01T01:30:00+02:00", "2023-12-31T23:30:00.000Z"),
        ("2024-12-31T23:00:00-01:30", "2025-01-01T00:30:00.000Z"),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
    ])
    func validTimestampsAreNormalisedToUTCMilliseconds(input: String, expected: String) {
        #expect(ISO8601Timestamp.normalize(input) == expected)
    }

    @Test(arguments: ["", "2024-12-31", "2024-12-31T23:59Z", "2024-12-31T23:59:59", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
                      "2024-12-31T24:00:00Z", "2024-12-31T23:60:00Z", "2024-12-31T23:59:60Z", "2024-12-31T23:59:59.Z",
                      "2024-12-31T23:59:59+0200", "2024-12-31T23:59:59Z ", "24-12-31T23:59:59Z", "2024-12-31 23:59:59Z"])
    func invalidTimestampsAreRefused(input: String) {
        #expect(ISO8601Timestamp.normalize(input) == nil)
    }

    @Test(arguments: ["10.0.0.1", "0.0.0.0/0", "192.168.0.0/16", "255.255.255.255/32", "::1", "2001:db8::/32", "fe80::1/128"])
    func validAddressesAndRangesAreAccepted(entry: String) {
        #expect(FieldRules.isIPOrCIDR(entry))
    }

    @Test(arguments: ["", "10.0.0", "256.1.1.1", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/-1", "::1/129", "host.example.com",
                      "10.0.0.1/8/8", " 10.0.0.1", "2001:db8::g", "fe80::1%eth0"])
    func invalidAddressesAndRangesAreRefused(entry: String) {
        #expect(!FieldRules.isIPOrCIDR(entry))
    }

    @Test(arguments: ["a@example.com", "first.last+tag@sub.example.org", "user@localhost", "ü@bücher.de"])
    func emailLikeAddressesAreAccepted(email: String) {
        #expect(FieldRules.isEmail(email))
    }

    @Test(arguments: ["", "plain", "@example.com", "a@", "a@@example.com", "a b@example.com", "a@exa mple.com", "a@example..com",
                      ".a@example.com", "a@-example.com"])
    func nonEmailsAreRefused(email: String) {
        #expect(!FieldRules.isEmail(email))
    }
}
