/// The country calling codes of ITU-T Recommendation E.164 ("List of ITU-T Recommendation E.164
/// assigned country codes", the annex to the ITU Operational Bulletin), each with the
/// ISO 3166-1 alpha-2 countries and territories that use it.
///
/// Only assigned codes are listed. Spare codes (0, 210, 214, 215, 217, 219, 259, 28x, 292–296,
/// 384, 422, 424–429, 671, 684, 693–699, 801–807, 809, 83x, 851, 854, 857–859, 871–874, 884,
/// 885, 887, 889, 89x, 969, 978, 990, 997, 999) and codes held in reserve for no one in
/// particular (875–877 maritime mobile, 879 national non-commercial use) are not.
/// Two codes the ITU list still carries as shared codes but under which no numbers are in
/// service are left out on purpose: 388 (the European Telephony Numbering Space, abolished in
/// 2008, all numbers withdrawn by 2010) and 991 (the ITPCS trial, ended).
///
/// A few region codes are not officially assigned ISO 3166-1 codes but are the ones used by
/// telephony data everywhere: `AC` (Ascension) and `TA` (Tristan da Cunha), both exceptionally
/// reserved, and `XK` (Kosovo), user-assigned.
///
/// Calling codes form a prefix code: no code is the beginning of another, so the code that
/// starts a number is found by trying its first one, two and three digits.
public enum CountryCallingCodes {
    /// Code → regions. An empty list marks a non-geographic (global service) code.
    static let table: [String: [String]] = [
        // Zone 1: the North American Numbering Plan.
        "1": ["US", "CA", "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO", "GD", "GU", "JM", "KN",
              "KY", "LC", "MP", "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI"],

        // Zone 2: mostly Africa.
        "20": ["EG"],
        "211": ["SS"],
        "212": ["MA", "EH"],
        "213": ["DZ"],
        "216": ["TN"],
        "218": ["LY"],
        "220": ["GM"],
        "221": ["SN"],
        "222": ["MR"],
        "223": ["ML"],
        "224": ["GN"],
        "225": ["CI"],
        "226": ["BF"],
        "227": ["NE"],
        "228": ["TG"],
        "229": ["BJ"],
        "230": ["MU"],
        "231": ["LR"],
        "232": ["SL"],
        "233": ["GH"],
        "234": ["NG"],
        "235": ["TD"],
        "236": ["CF"],
        "237": ["CM"],
        "238": ["CV"],
        "239": ["ST"],
        "240": ["GQ"],
        "241": ["GA"],
        "242": ["CG"],
        "243": ["CD"],
        "244": ["AO"],
        "245": ["GW"],
        "246": ["IO"],
        "247": ["AC"],
        "248": ["SC"],
        "249": ["SD"],
        "250": ["RW"],
        "251": ["ET"],
        "252": ["SO"],
        "253": ["DJ"],
        "254": ["KE"],
        "255": ["TZ"],
        "256": ["UG"],
        "257": ["BI"],
        "258": ["MZ"],
        "260": ["ZM"],
        "261": ["MG"],
        "262": ["RE", "YT"],
        "263": ["ZW"],
        "264": ["NA"],
        "265": ["MW"],
        "266": ["LS"],
        "267": ["BW"],
        "268": ["SZ"],
        "269": ["KM"],
        "27": ["ZA"],
        "290": ["SH", "TA"],
        "291": ["ER"],
        "297": ["AW"],
        "298": ["FO"],
        "299": ["GL"],

        // Zones 3 and 4: Europe.
        "30": ["GR"],
        "31": ["NL"],
        "32": ["BE"],
        "33": ["FR"],
        "34": ["ES"],
        "350": ["GI"],
        "351": ["PT"],
        "352": ["LU"],
        "353": ["IE"],
        "354": ["IS"],
        "355": ["AL"],
        "356": ["MT"],
        "357": ["CY"],
        "358": ["FI", "AX"],
        "359": ["BG"],
        "36": ["HU"],
        "370": ["LT"],
        "371": ["LV"],
        "372": ["EE"],
        "373": ["MD"],
        "374": ["AM"],
        "375": ["BY"],
        "376": ["AD"],
        "377": ["MC"],
        "378": ["SM"],
        "379": ["VA"],  // assigned to the Vatican, not in use: its numbers are under +39 06 698
        "380": ["UA"],
        "381": ["RS"],
        "382": ["ME"],
        "383": ["XK"],
        "385": ["HR"],
        "386": ["SI"],
        "387": ["BA"],
        "389": ["MK"],
        "39": ["IT", "VA"],
        "40": ["RO"],
        "41": ["CH"],
        "420": ["CZ"],
        "421": ["SK"],
        "423": ["LI"],
        "43": ["AT"],
        "44": ["GB", "GG", "IM", "JE"],
        "45": ["DK"],
        "46": ["SE"],
        "47": ["NO", "SJ"],
        "48": ["PL"],
        "49": ["DE"],

        // Zone 5: Central and South America.
        "500": ["FK", "GS"],
        "501": ["BZ"],
        "502": ["GT"],
        "503": ["SV"],
        "504": ["HN"],
        "505": ["NI"],
        "506": ["CR"],
        "507": ["PA"],
        "508": ["PM"],
        "509": ["HT"],
        "51": ["PE"],
        "52": ["MX"],
        "53": ["CU"],
        "54": ["AR"],
        "55": ["BR"],
        "56": ["CL"],
        "57": ["CO"],
        "58": ["VE"],
        "590": ["GP", "BL", "MF"],
        "591": ["BO"],
        "592": ["GY"],
        "593": ["EC"],
        "594": ["GF"],
        "595": ["PY"],
        "596": ["MQ"],
        "597": ["SR"],
        "598": ["UY"],
        "599": ["CW", "BQ"],

        // Zone 6: South-East Asia and Oceania.
        "60": ["MY"],
        "61": ["AU", "CC", "CX"],
        "62": ["ID"],
        "63": ["PH"],
        "64": ["NZ", "PN"],
        "65": ["SG"],
        "66": ["TH"],
        "670": ["TL"],
        "672": ["NF"],
        "673": ["BN"],
        "674": ["NR"],
        "675": ["PG"],
        "676": ["TO"],
        "677": ["SB"],
        "678": ["VU"],
        "679": ["FJ"],
        "680": ["PW"],
        "681": ["WF"],
        "682": ["CK"],
        "683": ["NU"],
        "685": ["WS"],
        "686": ["KI"],
        "687": ["NC"],
        "688": ["TV"],
        "689": ["PF"],
        "690": ["TK"],
        "691": ["FM"],
        "692": ["MH"],

        // Zone 7: Russia and Kazakhstan.
        "7": ["RU", "KZ"],

        // Zone 8: East Asia and global services.
        "800": [],  // International Freephone Service (UIFN)
        "808": [],  // International Shared Cost Service (ISCS)
        "81": ["JP"],
        "82": ["KR"],
        "84": ["VN"],
        "850": ["KP"],
        "852": ["HK"],
        "853": ["MO"],
        "855": ["KH"],
        "856": ["LA"],
        "86": ["CN"],
        "870": [],  // Inmarsat Single Network Access Code (SNAC)
        "878": [],  // Universal Personal Telecommunication Service (UPT)
        "880": ["BD"],
        "881": [],  // Global Mobile Satellite System (GMSS)
        "882": [],  // International Networks
        "883": [],  // International Networks
        "886": ["TW"],
        "888": [],  // Telecommunications for Disaster Relief (OCHA)

        // Zone 9: West, Central and South Asia, the Middle East.
        "90": ["TR"],
        "91": ["IN"],
        "92": ["PK"],
        "93": ["AF"],
        "94": ["LK"],
        "95": ["MM"],
        "960": ["MV"],
        "961": ["LB"],
        "962": ["JO"],
        "963": ["SY"],
        "964": ["IQ"],
        "965": ["KW"],
        "966": ["SA"],
        "967": ["YE"],
        "968": ["OM"],
        "970": ["PS"],
        "971": ["AE"],
        "972": ["IL"],
        "973": ["BH"],
        "974": ["QA"],
        "975": ["BT"],
        "976": ["MN"],
        "977": ["NP"],
        "979": [],  // International Premium Rate Service (IPRS)
        "98": ["IR"],
        "992": ["TJ"],
        "993": ["TM"],
        "994": ["AZ"],
        "995": ["GE"],
        "996": ["KG"],
        "998": ["UZ"],
    ]

    /// Region → its calling code. A region listed under two codes (the Vatican, under 39 where
    /// its numbers are and under its unused 379) gets the shorter one.
    private static let codeByRegion: [String: String] = {
        var result: [String: String] = [:]
        for (code, regions) in table {
            for region in regions {
                if let existing = result[region], existing.count < code.count || (existing.count == code.count && existing < code) {
                    continue
                }
                result[region] = code
            }
        }
        return result
    }()

    /// The assigned calling code that starts these digits (digits only, no '+'), or nil.
    public static func code(prefixing digits: some StringProtocol) -> String? {
        var value = 0, length = 0
        for byte in digits.utf8.prefix(3) {
            guard byte.isASCIIDigit else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            length += 1
            // No code starts with 0, so a value and its number of digits name at most one code.
            if let code = byValue[value], code.utf8.count == length { return code }
        }
        return nil
    }

    /// Every assigned code at the index of its value (`byValue[971] == "971"`): a phone number's
    /// code is found without building and hashing strings.
    private static let byValue: [String?] = {
        var codes = [String?](repeating: nil, count: 1_000)
        for code in table.keys { codes[Int(code)!] = code }
        return codes
    }()

    /// ISO 3166-1 alpha-2 regions using a code ("1" -> ["US","CA",...]); empty for non-geographic
    /// codes and for codes that are not assigned.
    public static func regions(for code: String) -> [String] {
        table[code] ?? []
    }

    /// The calling code of an ISO region ("AE" -> "971"), nil if unknown. Case-insensitive.
    public static func code(forRegion region: String) -> String? {
        codeByRegion[region.uppercased()]
    }

    /// Whether a code is assigned to a global service rather than to countries (800, 870, 881…).
    public static func isNonGeographic(_ code: String) -> Bool {
        table[code]?.isEmpty ?? false
    }

    /// Every assigned code, in numeric-prefix (lexicographic) order.
    public static var allCodes: [String] { table.keys.sorted() }

    /// Every region that has a calling code, sorted.
    public static var allRegions: [String] { codeByRegion.keys.sorted() }
}
