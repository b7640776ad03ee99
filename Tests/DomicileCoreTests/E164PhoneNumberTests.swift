import Testing
@testable import DomicileCore

/// One valid number of a country: the input as a person might write it, the region and the
/// calling code it must parse to. Subscriber parts are made up but follow each plan's shape.
struct SampleNumber: Sendable, CustomTestStringConvertible {
    let region: String
    let raw: String
    let code: String
    var testDescription: String { region }
}

struct InvalidInput: Sendable, CustomTestStringConvertible {
    let raw: String
    let error: PhoneNumberError
    let note: String
    var testDescription: String { note }
}

struct NationalInput: Sendable, CustomTestStringConvertible {
    let raw: String
    let region: String
    let e164: String
    var testDescription: String { "\(region): \(raw)" }
}

@Suite("E164 phone numbers")
struct E164PhoneNumberTests {
    static let samples: [SampleNumber] = [
        // GCC
        SampleNumber(region: "AE", raw: "+971 50 123 4567", code: "971"),
        SampleNumber(region: "QA", raw: "+974 3312 3456", code: "974"),
        SampleNumber(region: "SA", raw: "+966 50 123 4567", code: "966"),
        SampleNumber(region: "KW", raw: "+965 5012 3456", code: "965"),
        SampleNumber(region: "BH", raw: "+973 3612 3456", code: "973"),
        SampleNumber(region: "OM", raw: "+968 9212 3456", code: "968"),
        // Middle East, North Africa
        SampleNumber(region: "EG", raw: "+20 10 0123 4567", code: "20"),
        SampleNumber(region: "JO", raw: "+962 7 9012 3456", code: "962"),
        SampleNumber(region: "LB", raw: "+961 71 123 456", code: "961"),
        SampleNumber(region: "IQ", raw: "+964 770 123 4567", code: "964"),
        SampleNumber(region: "SY", raw: "+963 944 567 890", code: "963"),
        SampleNumber(region: "YE", raw: "+967 712 345 678", code: "967"),
        SampleNumber(region: "PS", raw: "+970 599 123 456", code: "970"),
        SampleNumber(region: "IL", raw: "+972 50-123-4567", code: "972"),
        SampleNumber(region: "IR", raw: "+98 912 345 6789", code: "98"),
        SampleNumber(region: "TR", raw: "+90 532 123 45 67", code: "90"),
        SampleNumber(region: "MA", raw: "+212 612-345678", code: "212"),
        SampleNumber(region: "DZ", raw: "+213 551 23 45 67", code: "213"),
        SampleNumber(region: "TN", raw: "+216 20 123 456", code: "216"),
        // South and Central Asia
        SampleNumber(region: "IN", raw: "+91 98765 43210", code: "91"),
        SampleNumber(region: "PK", raw: "+92 300 1234567", code: "92"),
        SampleNumber(region: "BD", raw: "+880 1712-345678", code: "880"),
        SampleNumber(region: "LK", raw: "+94 71 234 5678", code: "94"),
        SampleNumber(region: "AF", raw: "+93 70 123 4567", code: "93"),
        SampleNumber(region: "KZ", raw: "+7 701 234 5678", code: "7"),
        SampleNumber(region: "UZ", raw: "+998 90 123 45 67", code: "998"),
        // Europe
        SampleNumber(region: "GB", raw: "+44 7700 900123", code: "44"),
        SampleNumber(region: "GG", raw: "+44 7781 123456", code: "44"),
        SampleNumber(region: "DE", raw: "+49 30 12345678", code: "49"),
        SampleNumber(region: "FR", raw: "+33 6 12 34 56 78", code: "33"),
        SampleNumber(region: "IT", raw: "+39 06 1234 5678", code: "39"),
        SampleNumber(region: "ES", raw: "+34 612 34 56 78", code: "34"),
        SampleNumber(region: "PT", raw: "+351 912 345 678", code: "351"),
        SampleNumber(region: "NL", raw: "+31 6 12345678", code: "31"),
        SampleNumber(region: "BE", raw: "+32 470 12 34 56", code: "32"),
        SampleNumber(region: "CH", raw: "+41 79 123 45 67", code: "41"),
        SampleNumber(region: "AT", raw: "+43 664 1234567", code: "43"),
        SampleNumber(region: "IE", raw: "+353 85 123 4567", code: "353"),
        SampleNumber(region: "SE", raw: "+46 70 123 45 67", code: "46"),
        SampleNumber(region: "NO", raw: "+47 412 34 567", code: "47"),
        SampleNumber(region: "DK", raw: "+45 20 12 34 56", code: "45"),
        SampleNumber(region: "FI", raw: "+358 40 1234567", code: "358"),
        SampleNumber(region: "IS", raw: "+354 611 1234", code: "354"),
        SampleNumber(region: "PL", raw: "+48 512 345 678", code: "48"),
        SampleNumber(region: "CZ", raw: "+420 601 123 456", code: "420"),
        SampleNumber(region: "HU", raw: "+36 20 123 4567", code: "36"),
        SampleNumber(region: "RO", raw: "+40 712 345 678", code: "40"),
        SampleNumber(region: "GR", raw: "+30 691 234 5678", code: "30"),
        SampleNumber(region: "UA", raw: "+380 50 123 4567", code: "380"),
        SampleNumber(region: "RU", raw: "+7 912 345-67-89", code: "7"),
        SampleNumber(region: "XK", raw: "+383 44 123 456", code: "383"),
        SampleNumber(region: "FO", raw: "+298 211234", code: "298"),
        // Americas
        SampleNumber(region: "US", raw: "+1 (212) 555-0123", code: "1"),
        SampleNumber(region: "CA", raw: "+1 416 555 0134", code: "1"),
        SampleNumber(region: "PR", raw: "+1 787 555 0123", code: "1"),
        SampleNumber(region: "JM", raw: "+1 876 210 1234", code: "1"),
        SampleNumber(region: "MX", raw: "+52 55 1234 5678", code: "52"),
        SampleNumber(region: "BR", raw: "+55 11 91234-5678", code: "55"),
        SampleNumber(region: "AR", raw: "+54 9 11 1234-5678", code: "54"),
        SampleNumber(region: "CL", raw: "+56 9 6123 4567", code: "56"),
        SampleNumber(region: "CO", raw: "+57 300 1234567", code: "57"),
        SampleNumber(region: "PE", raw: "+51 912 345 678", code: "51"),
        SampleNumber(region: "GL", raw: "+299 22 12 34", code: "299"),
        // Asia-Pacific
        SampleNumber(region: "CN", raw: "+86 138 0013 8000", code: "86"),
        SampleNumber(region: "JP", raw: "+81 90-1234-5678", code: "81"),
        SampleNumber(region: "KR", raw: "+82 10 1234 5678", code: "82"),
        SampleNumber(region: "HK", raw: "+852 5123 4567", code: "852"),
        SampleNumber(region: "TW", raw: "+886 912 345 678", code: "886"),
        SampleNumber(region: "SG", raw: "+65 8123 4567", code: "65"),
        SampleNumber(region: "MY", raw: "+60 12-345 6789", code: "60"),
        SampleNumber(region: "TH", raw: "+66 81 234 5678", code: "66"),
        SampleNumber(region: "ID", raw: "+62 812 3456 7890", code: "62"),
        SampleNumber(region: "PH", raw: "+63 917 123 4567", code: "63"),
        SampleNumber(region: "VN", raw: "+84 91 234 56 78", code: "84"),
        SampleNumber(region: "AU", raw: "+61 412 345 678", code: "61"),
        SampleNumber(region: "NZ", raw: "+64 21 123 4567", code: "64"),
        SampleNumber(region: "NU", raw: "+683 4002", code: "683"),
        SampleNumber(region: "TK", raw: "+690 3010", code: "690"),
        // Sub-Saharan Africa
        SampleNumber(region: "ZA", raw: "+27 82 123 4567", code: "27"),
        SampleNumber(region: "NG", raw: "+234 803 123 4567", code: "234"),
        SampleNumber(region: "KE", raw: "+254 712 345678", code: "254"),
        SampleNumber(region: "GH", raw: "+233 24 123 4567", code: "233"),
        SampleNumber(region: "ET", raw: "+251 91 123 4567", code: "251"),
        SampleNumber(region: "CI", raw: "+225 07 01 23 45 67", code: "225"),
        SampleNumber(region: "SN", raw: "+221 77 123 45 67", code: "221"),
    ]

    @Test("a real-looking number of each country parses to its calling code", arguments: samples)
    func validNumber(_ sample: SampleNumber) throws {
        let number = try E164PhoneNumber(validating: sample.raw)
        #expect(number.countryCallingCode == sample.code)
        #expect(number.e164 == "+" + sample.raw.filter(\.isNumber))
        #expect(CountryCallingCodes.regions(for: number.countryCallingCode).contains(sample.region))
        #expect(CountryCallingCodes.code(forRegion: sample.region) == sample.code)
    }

    @Test func samplesCoverAtLeastSixtyCountriesAndAllOfTheGCC() {
        let regions = Set(Self.samples.map(\.region))
        #expect(regions.count == Self.samples.count)
        #expect(regions.count >= 60)
        #expect(regions.isSuperset(of: ["AE", "QA", "SA", "KW", "BH", "OM"]))
    }

    static let invalid: [InvalidInput] = [
        InvalidInput(raw: "", error: .empty, note: "empty"),
        InvalidInput(raw: "   \t\n", error: .empty, note: "white space only"),
        InvalidInput(raw: "971501234567", error: .missingPlus, note: "no plus"),
        InvalidInput(raw: "00971501234567", error: .missingPlus, note: "00 instead of plus"),
        InvalidInput(raw: "050 123 4567", error: .missingPlus, note: "national format without region"),
        InvalidInput(raw: "971+501234567", error: .missingPlus, note: "plus in the middle"),
        InvalidInput(raw: "＋971501234567", error: .missingPlus, note: "full-width plus"),
        InvalidInput(raw: "+971 50 ABC 4567", error: .invalidCharacters, note: "letters"),
        InvalidInput(raw: "+1-800-FLOWERS", error: .invalidCharacters, note: "vanity letters"),
        InvalidInput(raw: "+971 50 123 4567 ext 12", error: .invalidCharacters, note: "extension"),
        InvalidInput(raw: "++971501234567", error: .invalidCharacters, note: "double plus"),
        InvalidInput(raw: "+971/50/1234567", error: .invalidCharacters, note: "slashes"),
        InvalidInput(raw: "+971_501234567", error: .invalidCharacters, note: "underscore"),
        InvalidInput(raw: "+٩٧١٥٠١٢٣٤٥٦٧", error: .invalidCharacters, note: "Arabic-Indic digits"),
        InvalidInput(raw: "+28 1234 5678", error: .unassignedCountryCode, note: "spare 28"),
        InvalidInput(raw: "+80 1234 5678", error: .unassignedCountryCode, note: "spare 80x"),
        InvalidInput(raw: "+801 234 5678", error: .unassignedCountryCode, note: "spare 801"),
        InvalidInput(raw: "+83 1234 5678", error: .unassignedCountryCode, note: "spare 83x"),
        InvalidInput(raw: "+89 1234 5678", error: .unassignedCountryCode, note: "spare 89x"),
        InvalidInput(raw: "+210 1234 5678", error: .unassignedCountryCode, note: "spare 210"),
        InvalidInput(raw: "+259 1234 5678", error: .unassignedCountryCode, note: "spare 259"),
        InvalidInput(raw: "+293 1234 5678", error: .unassignedCountryCode, note: "spare 293"),
        InvalidInput(raw: "+384 1234 5678", error: .unassignedCountryCode, note: "spare 384"),
        InvalidInput(raw: "+425 1234 5678", error: .unassignedCountryCode, note: "spare 425"),
        InvalidInput(raw: "+671 1234 5678", error: .unassignedCountryCode, note: "spare 671 (former Guam)"),
        InvalidInput(raw: "+684 1234 5678", error: .unassignedCountryCode, note: "spare 684 (former American Samoa)"),
        InvalidInput(raw: "+699 1234 5678", error: .unassignedCountryCode, note: "spare 699"),
        InvalidInput(raw: "+969 1234 5678", error: .unassignedCountryCode, note: "spare 969"),
        InvalidInput(raw: "+990 1234 5678", error: .unassignedCountryCode, note: "spare 990"),
        InvalidInput(raw: "+997 1234 5678", error: .unassignedCountryCode, note: "spare 997"),
        InvalidInput(raw: "+999 123 456 789", error: .unassignedCountryCode, note: "spare 999"),
        InvalidInput(raw: "+0971501234567", error: .leadingZero, note: "leading zero"),
        InvalidInput(raw: "+0 1234 5678", error: .leadingZero, note: "country code 0"),
        InvalidInput(raw: "+00971501234567", error: .leadingZero, note: "plus and 00"),
        InvalidInput(raw: "+971 50 123 4567 8901", error: .tooLong, note: "16 digits"),
        InvalidInput(raw: "+1 212 555 0123 4567 89", error: .tooLong, note: "17 digits"),
        InvalidInput(raw: "+971 50", error: .tooShort, note: "5 digits"),
        InvalidInput(raw: "+44 7700", error: .tooShort, note: "6 digits"),
        InvalidInput(raw: "+", error: .tooShort, note: "plus only"),
        InvalidInput(raw: "+ - ()", error: .tooShort, note: "separators only"),
    ]

    @Test("invalid input is refused with the expected error", arguments: invalid)
    func invalidNumber(_ input: InvalidInput) {
        #expect(throws: input.error) { try E164PhoneNumber(validating: input.raw) }
    }

    @Test("error descriptions never repeat the input", arguments: invalid)
    func errorDescriptionOmitsInput(_ input: InvalidInput) {
        do {
            _ = try E164PhoneNumber(validating: input.raw)
            Issue.record("expected \(input.error)")
        } catch {
            let digits = input.raw.filter(\.isNumber)
            #expect(!error.description.isEmpty)
            if digits.count >= 4 { #expect(!error.description.contains(digits)) }
        }
    }

    @Test func everyErrorHasADistinctSentence() {
        let all: [PhoneNumberError] = [.empty, .missingPlus, .invalidCharacters, .tooShort, .tooLong,
                                       .unassignedCountryCode, .leadingZero, .unknownRegion]
        #expect(Set(all.map(\.description)).count == all.count)
        #expect(PhoneNumberError.missingPlus.description == "must start with '+' and the country calling code (E.164)")
    }

    @Test("separators and surrounding white space are removed", arguments: [
        (" +971 50-123 4567 ", "+971501234567"),
        ("+971501234567", "+971501234567"),
        ("+1 (212) 555-0123", "+12125550123"),
        ("+44 20.7946.0958", "+442079460958"),
        ("\t+33 6 12 34 56 78\n", "+33612345678"),
        ("+971\u{00A0}50\u{00A0}123\u{00A0}4567", "+971501234567"),
        ("+ 966 (50) 123-45-67", "+966501234567"),
        ("+6834002", "+6834002"),
    ])
    func normalisation(_ raw: String, _ expected: String) throws {
        #expect(try E164PhoneNumber(validating: raw).e164 == expected)
    }

    @Test func equalNumbersInDifferentSpellingsAreEqual() throws {
        let a = try E164PhoneNumber(validating: "+971 50 123 4567")
        let b = try E164PhoneNumber(validating: "+971-50-1234567")
        let c = try E164PhoneNumber(validating: "050 123 4567", defaultRegion: "AE")
        #expect(a == b)
        #expect(a == c)
        #expect(Set([a, b, c]).count == 1)
    }

    static let national: [NationalInput] = [
        NationalInput(raw: "050 123 4567", region: "AE", e164: "+971501234567"),
        NationalInput(raw: "050-123-4567", region: "ae", e164: "+971501234567"),
        NationalInput(raw: "0501234567", region: "SA", e164: "+966501234567"),
        NationalInput(raw: "3312 3456", region: "QA", e164: "+97433123456"),
        NationalInput(raw: "5012 3456", region: "KW", e164: "+96550123456"),
        NationalInput(raw: "3612 3456", region: "BH", e164: "+97336123456"),
        NationalInput(raw: "9212 3456", region: "OM", e164: "+96892123456"),
        NationalInput(raw: "010 0123 4567", region: "EG", e164: "+201001234567"),
        NationalInput(raw: "079 012 3456", region: "JO", e164: "+962790123456"),
        NationalInput(raw: "03 123 456", region: "LB", e164: "+9613123456"),
        NationalInput(raw: "098765 43210", region: "IN", e164: "+919876543210"),
        NationalInput(raw: "0300 1234567", region: "PK", e164: "+923001234567"),
        NationalInput(raw: "07700 900123", region: "GB", e164: "+447700900123"),
        NationalInput(raw: "030 12345678", region: "DE", e164: "+493012345678"),
        NationalInput(raw: "06 12 34 56 78", region: "FR", e164: "+33612345678"),
        NationalInput(raw: "06 1234 5678", region: "IT", e164: "+390612345678"),
        NationalInput(raw: "06 20 123 4567", region: "HU", e164: "+36201234567"),
        NationalInput(raw: "(212) 555-0123", region: "US", e164: "+12125550123"),
        NationalInput(raw: "1 212 555 0123", region: "US", e164: "+12125550123"),
        NationalInput(raw: "416-555-0134", region: "CA", e164: "+14165550134"),
        NationalInput(raw: "8 912 345-67-89", region: "RU", e164: "+79123456789"),
        NationalInput(raw: "912 345 67 89", region: "RU", e164: "+79123456789"),
        NationalInput(raw: "8 701 234 5678", region: "KZ", e164: "+77012345678"),
        NationalInput(raw: "0412 345 678", region: "AU", e164: "+61412345678"),
        NationalInput(raw: "8123 4567", region: "SG", e164: "+6581234567"),
        NationalInput(raw: "+971 50 123 4567", region: "SA", e164: "+971501234567"),
        NationalInput(raw: "00971 50 123 4567", region: "GB", e164: "+971501234567"),
        NationalInput(raw: "+971 50 123 4567", region: "ZZ", e164: "+971501234567"),
    ]

    @Test("national formats with a default region", arguments: national)
    func nationalFormat(_ input: NationalInput) throws {
        #expect(try E164PhoneNumber(validating: input.raw, defaultRegion: input.region).e164 == input.e164)
    }

    @Test("national formats that are refused", arguments: [
        ("050 123 4567", "ZZ", PhoneNumberError.unknownRegion),
        ("050 123 4567", "", .unknownRegion),
        ("050 123 4567", "UAE", .unknownRegion),
        ("050 123 4567", "971", .unknownRegion),
        ("", "AE", .empty),
        ("05O 123 4567", "AE", .invalidCharacters),
        ("0 12", "AE", .tooShort),
        ("0", "AE", .tooShort),
        ("000 971 50 123 4567", "AE", .leadingZero),
        ("0028 1234 5678", "AE", .unassignedCountryCode),
        ("+971 50", "AE", .tooShort),
        ("050 123 4567 8901 2345", "AE", .tooLong),
    ])
    func nationalFormatRefused(_ raw: String, _ region: String, _ error: PhoneNumberError) {
        #expect(throws: error) { try E164PhoneNumber(validating: raw, defaultRegion: region) }
    }

    @Test func descriptionIsMasked() throws {
        let number = try E164PhoneNumber(validating: "+971 50 123 4567")
        #expect(number.description == "+9715*****567")
        #expect(number.debugDescription == "+9715*****567")
        #expect("\(number)" == "+9715*****567")
    }

    @Test("the masked forms never contain the full number", arguments: samples)
    func maskingHidesTheNumber(_ sample: SampleNumber) throws {
        let number = try E164PhoneNumber(validating: sample.raw)
        let digits = String(number.e164.dropFirst())
        for shown in [number.description, number.debugDescription, "\(number)", String(reflecting: number)] {
            #expect(!shown.contains(digits))
            #expect(shown.filter { $0 == "*" }.count >= 3)
            #expect(shown.filter(\.isNumber).count <= digits.count / 2 + 1)
        }
    }

    // MARK: - The table

    @Test func everyCodeIsOneToThreeDigitsNotStartingWithZero() {
        for code in CountryCallingCodes.allCodes {
            #expect((1...3).contains(code.count), "\(code)")
            #expect(code.allSatisfy { ("0"..."9").contains($0) }, "\(code)")
            #expect(!code.hasPrefix("0"), "\(code)")
        }
    }

    /// The lookup by value gives what building each prefix and looking it up in the table gives,
    /// for every string of up to four digits (leading zeros included) and a few non-digits.
    @Test func codeOfEveryPrefixMatchesTheTable() {
        let codes = Set(CountryCallingCodes.allCodes)
        func reference(_ digits: String) -> String? {
            var candidate = ""
            for character in digits.prefix(3) {
                candidate.append(character)
                if codes.contains(candidate) { return candidate }
            }
            return nil
        }
        var inputs = ["", "a", "a1", "1a", "9a9", "+1", " 44", "٩٧١"]
        for length in 1...4 {
            for value in 0..<[10, 100, 1_000, 10_000][length - 1] {
                let digits = String(value)
                inputs.append(String(repeating: "0", count: length - digits.count) + digits)
            }
        }
        for digits in inputs {
            #expect(CountryCallingCodes.code(prefixing: digits) == reference(digits), "\(digits)")
        }
        #expect(CountryCallingCodes.code(prefixing: "971501234567") == "971")
        #expect(CountryCallingCodes.code(prefixing: "14155552671") == "1")
        #expect(CountryCallingCodes.code(prefixing: "0971") == nil)
    }

    @Test func tableIsPrefixFree() {
        let codes = CountryCallingCodes.allCodes
        for a in codes {
            for b in codes where a != b {
                #expect(!b.hasPrefix(a), "\(a) is a prefix of \(b)")
            }
        }
    }

    @Test func everyRegionIsTwoUppercaseLettersAndMapsBack() {
        for code in CountryCallingCodes.allCodes {
            let regions = CountryCallingCodes.regions(for: code)
            #expect(Set(regions).count == regions.count, "\(code) lists a region twice")
            for region in regions {
                #expect(region.count == 2 && region.allSatisfy { ("A"..."Z").contains($0) }, "\(region)")
                let back = CountryCallingCodes.code(forRegion: region)
                #expect(back != nil && CountryCallingCodes.regions(for: back!).contains(region), "\(region)")
            }
        }
        #expect(CountryCallingCodes.allRegions.count >= 240)
        #expect(CountryCallingCodes.allCodes.count >= 200)
    }

    @Test("spare codes are not in the table", arguments: [
        "0", "28", "80", "83", "89", "210", "214", "215", "217", "219", "259", "292", "293", "294",
        "295", "296", "384", "422", "424", "425", "426", "427", "428", "429", "671", "684", "693",
        "694", "695", "696", "697", "698", "699", "801", "802", "803", "804", "805", "806", "807",
        "809", "851", "854", "857", "858", "859", "871", "872", "873", "874", "875", "876", "877",
        "879", "884", "885", "887", "889", "969", "978", "990", "997", "999",
    ])
    func spareCode(_ code: String) {
        #expect(!CountryCallingCodes.allCodes.contains(code))
        #expect(CountryCallingCodes.regions(for: code).isEmpty)
        #expect(CountryCallingCodes.code(prefixing: code + "12345678") == nil)
    }

    @Test("global service codes are assigned and non-geographic", arguments: [
        "800", "808", "870", "878", "881", "882", "883", "888", "979",
    ])
    func globalServiceCode(_ code: String) throws {
        #expect(CountryCallingCodes.allCodes.contains(code))
        #expect(CountryCallingCodes.regions(for: code).isEmpty)
        #expect(CountryCallingCodes.isNonGeographic(code))
        let number = try E164PhoneNumber(validating: "+\(code) 1234 5678")
        #expect(number.countryCallingCode == code)
    }

    @Test func lookups() {
        #expect(CountryCallingCodes.code(prefixing: "971501234567") == "971")
        #expect(CountryCallingCodes.code(prefixing: "12125550123") == "1")
        #expect(CountryCallingCodes.code(prefixing: "79123456789") == "7")
        #expect(CountryCallingCodes.code(prefixing: "447700900123") == "44")
        #expect(CountryCallingCodes.code(prefixing: "97") == nil)
        #expect(CountryCallingCodes.code(prefixing: "") == nil)
        #expect(CountryCallingCodes.code(prefixing: "+971") == nil)
        #expect(CountryCallingCodes.code(prefixing: "971501234567"[...]) == "971")

        let nanp = CountryCallingCodes.regions(for: "1")
        #expect(["US", "CA", "PR", "VI", "GU", "AS", "MP", "JM", "TT", "BS", "BB", "DO", "SX"].allSatisfy(nanp.contains))
        #expect(Set(CountryCallingCodes.regions(for: "7")) == ["RU", "KZ"])
        #expect(Set(CountryCallingCodes.regions(for: "44")) == ["GB", "GG", "JE", "IM"])
        #expect(CountryCallingCodes.regions(for: "971") == ["AE"])
        #expect(CountryCallingCodes.regions(for: "28").isEmpty)
        #expect(!CountryCallingCodes.isNonGeographic("971"))
        #expect(!CountryCallingCodes.isNonGeographic("28"))

        let gcc = ["AE": "971", "QA": "974", "SA": "966", "KW": "965", "BH": "973", "OM": "968"]
        for (region, code) in gcc {
            #expect(CountryCallingCodes.code(forRegion: region) == code)
        }
        #expect(CountryCallingCodes.code(forRegion: "ae") == "971")
        #expect(CountryCallingCodes.code(forRegion: "EG") == "20")
        #expect(CountryCallingCodes.code(forRegion: "US") == "1")
        #expect(CountryCallingCodes.code(forRegion: "VA") == "39")
        #expect(CountryCallingCodes.code(forRegion: "ZZ") == nil)
        #expect(CountryCallingCodes.code(forRegion: "") == nil)
    }
}
