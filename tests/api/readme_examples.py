"""The README's example responses, extracted verbatim (spec/mxproxy-2.3-readme.ru.txt)."""

README_CONTACTS = [
    {
        "jid": "43884852633771555",
        "firstName": "SMS",
        "lastName": "Gateway C73",
        "ext": "3010"
    },
    {
        "jid": "43884851338921185",
        "firstName": "mxflex",
        "lastName": "mxflex",
        "ext": "3042"
    },
    {
        "jid": "43884852654574210",
        "firstName": "Ilia",
        "lastName": "Test",
        "ext": "3043"
    },
    {
        "jid": "43884851428118509",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "homePhone": "+1-202-555-0104",
        "cellPhone": "+1-512-555-0136",
        "email": "peterh@xyzrd.com",
        "did": "15125550136"
    },
    {
        "jid": "43884850646482261",
        "firstName": "Mike",
        "lastName": "Flynn",
        "ext": "3055",
        "homePhone": "+1-202-555-0104",
        "cellPhone": "+1-512-555-0136",
        "email": "mikef@xyzrd.com"
    },
    {
        "jid": "43884850557879186",
        "firstName": "Test",
        "lastName": "One",
        "ext": "3080"
    },
    {
        "jid": "43884851776746473",
        "firstName": "Test",
        "lastName": "Two",
        "ext": "3081"
    },
    {
        "jid": "43884852542754454",
        "firstName": "Test",
        "lastName": "Three",
        "ext": "3082"
    },
    {
        "jid": "43884852535898307",
        "firstName": "dstest1",
        "lastName": "dstest1",
        "ext": "3091"
    },
    {
        "jid": "43884850939404214",
        "firstName": "dstest2",
        "lastName": "dstest2",
        "ext": "3092",
        "cellPhone": "16693507465",
        "did": "16693507465"
    },
    {
        "jid": "43884850647480796",
        "firstName": "Test",
        "lastName": "Admin",
        "ext": "3093"
    },
    {
        "jid": "43884852355777349",
        "firstName": "Zultys",
        "lastName": "Test",
        "ext": "3094"
    },
    {
        "jid": "43884851147406145",
        "firstName": "Dmitry",
        "lastName": "Sedykh",
        "ext": "3095",
        "cellPhone": "+79031744445",
        "email": "dmitrys@xyzrd.com"
    },
    {
        "jid": "43884851851343044",
        "firstName": "Sergey",
        "lastName": "Kananykhin",
        "ext": "3096"
    },
    {
        "jid": "43884851514905017",
        "firstName": "Test",
        "lastName": "Zultys",
        "ext": "3097"
    },
    {
        "jid": "43884851324615074",
        "firstName": "John",
        "lastName": "Smith",
        "ext": "3098",
        "cellPhone": "12035160992",
        "did": "12035160992"
    },
    {
        "jid": "43884852031096113",
        "firstName": "Maxim",
        "lastName": "Donchenko",
        "ext": "3099",
        "cellPhone": "+420720961083"
    }
]

README_CALL_LOG = [
    {
        "missed": True,
        "direction": "incoming",
        "record_id": 973,
        "gcid": "63022-00-0000D-3B9",
        "connectTimestamp": 1503223469,
        "disconnectTimestamp": 1503223472,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 9
    },
    {
        "direction": "outgoing",
        "record_id": 975,
        "gcid": "63022-00-0000D-3BB",
        "disconnectTimestamp": 1503258153,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 976,
        "gcid": "63022-00-0000D-3BC",
        "disconnectTimestamp": 1503264934,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1047,
        "gcid": "63022-00-0000D-3F8",
        "disconnectTimestamp": 1503472515,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1138,
        "gcid": "63022-00-0000D-444",
        "disconnectTimestamp": 1503961073,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1139,
        "gcid": "63022-00-0000D-445",
        "disconnectTimestamp": 1503961572,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1140,
        "gcid": "63022-00-0000D-446",
        "disconnectTimestamp": 1503961749,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1141,
        "gcid": "63022-00-0000D-447",
        "disconnectTimestamp": 1503963185,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1142,
        "gcid": "63022-00-0000D-448",
        "disconnectTimestamp": 1503963904,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1143,
        "gcid": "63022-00-0000D-449",
        "disconnectTimestamp": 1503964356,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1158,
        "gcid": "63022-00-0000D-458",
        "disconnectTimestamp": 1504115834,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1159,
        "gcid": "63022-00-0000D-459",
        "disconnectTimestamp": 1504122163,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1169,
        "gcid": "63022-00-0000D-463",
        "disconnectTimestamp": 1504189334,
        "callingPartyNo": "3095",
        "originalCalledPartyNo": "3044",
        "firstName": "Peter",
        "lastName": "Hyde",
        "extension": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1186,
        "gcid": "63022-00-0000D-474",
        "disconnectTimestamp": 1504263779,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "+79031744445",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1187,
        "gcid": "63022-00-0000D-475",
        "disconnectTimestamp": 1504263810,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "+74992549993",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1188,
        "gcid": "63022-00-0000D-476",
        "disconnectTimestamp": 1504263972,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "+74992549993",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "missed": True,
        "direction": "incoming",
        "record_id": 1190,
        "gcid": "63022-00-0000D-478",
        "connectTimestamp": 1504522727,
        "disconnectTimestamp": 1504522740,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 9
    },
    {
        "direction": "incoming",
        "record_id": 1192,
        "gcid": "63022-00-0000D-478",
        "connectTimestamp": 1504522742,
        "disconnectTimestamp": 1504522747,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "voicemail.3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 3
    },
    {
        "missed": True,
        "direction": "incoming",
        "record_id": 1193,
        "gcid": "63022-00-0000D-47A",
        "connectTimestamp": 1504523032,
        "disconnectTimestamp": 1504523045,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 9
    },
    {
        "direction": "incoming",
        "record_id": 1195,
        "gcid": "63022-00-0000D-47A",
        "connectTimestamp": 1504523045,
        "disconnectTimestamp": 1504523053,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "voicemail.3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 3
    },
    {
        "missed": True,
        "direction": "incoming",
        "record_id": 1207,
        "gcid": "63022-00-0000D-486",
        "connectTimestamp": 1504524355,
        "disconnectTimestamp": 1504524367,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 9
    },
    {
        "direction": "incoming",
        "record_id": 1209,
        "gcid": "63022-00-0000D-486",
        "connectTimestamp": 1504524370,
        "disconnectTimestamp": 1504524373,
        "callingPartyNo": "3044",
        "originalCalledPartyNo": "voicemail.3095",
        "firstName": "Peter",
        "lastName": "Hyde",
        "ext": "3044",
        "callType": 1,
        "legType": 1,
        "selfLegType": 3
    },
    {
        "direction": "outgoing",
        "record_id": 1286,
        "gcid": "63022-00-0000D-4D4",
        "disconnectTimestamp": 1504626178,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1287,
        "gcid": "63022-00-0000D-4D5",
        "disconnectTimestamp": 1504626217,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1289,
        "gcid": "63022-00-0000D-4D7",
        "disconnectTimestamp": 1504626312,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1295,
        "gcid": "63022-00-0000D-4DD",
        "disconnectTimestamp": 1504626448,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    },
    {
        "direction": "outgoing",
        "record_id": 1301,
        "gcid": "63022-00-0000D-4E3",
        "disconnectTimestamp": 1504626848,
        "callingPartyNo": "79031744445",
        "originalCalledPartyNo": "79031744437",
        "callType": 1,
        "legType": 1,
        "selfLegType": 1
    }
]

README_SERVICES = [
    {
        "id": "3502649365667727804",
        "name": "TESTIVR",
        "type": "AA",
        "ext": "3777"
    },
    {
        "id": "3458764515081031672",
        "name": "park",
        "type": "ParkServer",
        "ext": "*77"
    },
    {
        "id": "3458764513956069980",
        "name": "voicemail",
        "type": "VM",
        "ext": "*86"
    },
    {
        "id": "3502649365616396596",
        "name": "HoldForPush",
        "type": "AA",
        "ext": "3799"
    },
    {
        "id": "3458764515541333316",
        "name": "bind",
        "type": "BindServer",
        "ext": "*27"
    },
    {
        "id": "3502649364391454199",
        "name": "AAA_1",
        "type": "AdvancedACD",
        "ext": "3999"
    }
]

README_VOICEMAILS = [
    {
        "from": "3095",
        "fromName": "Dmitry Sedykh",
        "to": "3095",
        "ownerType": "user",
        "id": "82",
        "mediaType": "VoiceMail",
        "received": 1502213652,
        "duration": 29,
        "read": True,
        "note": "text note"
    },
    {
        "from": "3044",
        "fromName": "Peter Hyde",
        "callerName": "Peter Hyde",
        "to": "3095",
        "ownerType": "user",
        "id": "117",
        "mediaType": "VoiceMail",
        "received": 1502565440,
        "duration": 7
    }
]

# The README's example config file ("Пример конфигурационного файла"), verbatim.
README_CONFIG = '''[apps]
client1 = "client-secret"
[voip]
apnTTL = "3m50s"
[voip.apn]
"certificate.p12" = "password"
[voip.fcm]
"app" = "AAAA0bHpCVQ:APA9...p7Yge"
'''
