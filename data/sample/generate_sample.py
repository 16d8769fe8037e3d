#!/usr/bin/env python
"""Regenerate the hand-written demo fixture in this folder (train/test x QC/QI, competition raw format).

Every query, title and category path below was written by hand for this project; nothing is copied from a
data set. Labels follow a simple, learnable rule: a row is relevant (1) when the query's product concept
matches the category path / item title, irrelevant (0) otherwise (random or same-department negatives).
Deterministic: `python data/sample/generate_sample.py` rewrites the same four files.
"""

import json
import os
import random

SEED = 20250901
HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_LANGUAGES = {"qc": ["en", "es", "fr", "ja", "ko", "pt"], "qi": ["en", "es", "fr", "ja", "ko", "pt", "th"]}
TEST_LANGUAGES = {
    "qc": TRAIN_LANGUAGES["qc"] + ["de", "it", "pl", "ar"],
    "qi": TRAIN_LANGUAGES["qi"] + ["de", "it", "pl", "ar", "vn", "id"],
}

# One product concept per entry: the category path(s) it belongs to (levels joined by "," and a level name
# may contain ", "), English listing titles, a few localised titles, and queries per language.
CONCEPTS = [
    {
        "paths": ["phones & telecommunications,mobile phone accessories,phone cases & covers"],
        "titles": [
            "Luxury Shockproof Silicone Case for iPhone 15 14 13 Pro Max Soft TPU Back Cover",
            "Magnetic Clear Phone Case for Samsung Galaxy S24 Ultra A54 A34 Transparent Bumper Cover",
            "Cute Cartoon Bear Phone Case for Xiaomi Redmi Note 13 12 Pro Candy Color Cover",
            "Leather Wallet Flip Case for iPhone 12 with Card Holder Stand",
        ],
        "local_titles": {
            "es": ["Funda de silicona antigolpes para iPhone 14 Pro Max, carcasa suave"],
            "pt": ["Capinha Anti Impacto Transparente para Samsung A54 Capa Silicone"],
            "fr": ["Coque Silicone Antichoc pour iPhone 13 Étui Souple Transparent"],
        },
        "queries": {
            "en": ["iphone 15 pro max case", "phone case samsung a54", "clear case iphone 13"],
            "es": ["funda iphone 14", "funda samsung a34 transparente", "carcasa xiaomi redmi note 12"],
            "fr": ["coque iphone 13", "coque samsung s24 ultra", "etui telephone"],
            "ja": ["iphone15 ケース", "スマホケース 手帳型", "アイフォン ケース クリア"],
            "ko": ["아이폰15 케이스", "갤럭시 s24 케이스", "폰케이스 투명"],
            "pt": ["capinha iphone 11", "capa samsung a54", "capinha transparente"],
            "th": ["เคสไอโฟน 14", "เคสโทรศัพท์ samsung"],
            "de": ["handyhülle iphone 15", "hülle samsung a54"],
            "it": ["cover iphone 14", "custodia samsung a34"],
            "pl": ["etui iphone 13", "etui na telefon samsung"],
            "ar": ["جراب ايفون 14", "كفر سامسونج"],
            "vn": ["ốp lưng iphone 15", "ốp điện thoại samsung"],
            "id": ["casing hp iphone 13", "case samsung a54"],
        },
    },
    {
        "paths": ["phones & telecommunications,mobile phone accessories,screen protectors"],
        "titles": [
            "3PCS Tempered Glass Screen Protector for iPhone 15 14 Pro Max Full Cover 9H Film",
            "Privacy Anti-Spy Tempered Glass for Samsung Galaxy A54 Screen Protector",
            "Hydrogel Film for Xiaomi 13T Pro Soft Screen Protector Not Glass",
        ],
        "local_titles": {"es": ["Protector de pantalla de cristal templado para iPhone 13, 3 piezas"]},
        "queries": {
            "en": ["tempered glass iphone 14", "screen protector samsung", "privacy screen protector"],
            "es": ["cristal templado iphone 13", "protector pantalla samsung a54"],
            "fr": ["verre trempé iphone 14", "protection ecran samsung"],
            "ja": ["ガラスフィルム iphone", "保護フィルム アンドロイド"],
            "ko": ["강화유리 필름 아이폰", "액정보호필름"],
            "pt": ["pelicula de vidro iphone 12", "pelicula 3d samsung"],
            "th": ["ฟิล์มกระจก iphone", "ฟิล์มกันรอย"],
            "de": ["panzerglas iphone 14", "schutzfolie samsung"],
            "it": ["vetro temperato iphone", "pellicola protettiva samsung"],
            "pl": ["szkło hartowane iphone 13", "folia ochronna"],
            "ar": ["اسكرينة حماية ايفون", "لاصقة شاشة"],
            "vn": ["kính cường lực iphone 14", "dán màn hình samsung"],
            "id": ["tempered glass iphone 11", "anti gores samsung"],
        },
    },
    {
        "paths": ["phones & telecommunications,mobile phone accessories,chargers, cables & adapters,data cables"],
        "titles": [
            "USB C to Lightning Cable 20W PD Fast Charging Cable for iPhone 14 13 1M 2M",
            "3A Type C Cable Fast Charge USB Data Cord for Samsung Xiaomi Huawei Nylon Braided",
            "65W GaN Charger USB C PD Quick Charge 3.0 Wall Adapter EU US Plug",
        ],
        "local_titles": {"pt": ["Cabo USB Tipo C Carregamento Rápido 3A Reforçado 2 Metros"]},
        "queries": {
            "en": ["usb c cable", "fast charger iphone", "lightning cable 2m"],
            "es": ["cable usb tipo c", "cargador rapido iphone"],
            "fr": ["cable usb c", "chargeur rapide samsung"],
            "ja": ["タイプc ケーブル", "急速充電器"],
            "ko": ["c타입 케이블", "고속충전기"],
            "pt": ["cabo tipo c", "carregador turbo"],
            "th": ["สายชาร์จ type c", "หัวชาร์จเร็ว"],
            "de": ["ladekabel usb c", "schnellladegerät"],
            "it": ["cavo usb c", "caricatore rapido"],
            "pl": ["kabel usb c", "ładowarka szybka"],
            "ar": ["شاحن سريع", "كابل تايب سي"],
            "vn": ["cáp sạc type c", "củ sạc nhanh"],
            "id": ["kabel data type c", "charger fast charging"],
        },
    },
    {
        "paths": ["consumer electronics,earphones & headphones,bluetooth earphones & headphones"],
        "titles": [
            "TWS Wireless Bluetooth 5.3 Earbuds Noise Cancelling Earphones with Mic Touch Control",
            "Over Ear Wireless Headphones Bluetooth Foldable HiFi Stereo Headset with Microphone",
            "Bone Conduction Open Ear Sports Headphones IPX5 Waterproof",
        ],
        "local_titles": {"fr": ["Écouteurs Bluetooth sans fil TWS avec réduction de bruit et micro"]},
        "queries": {
            "en": ["wireless earbuds", "bluetooth headphones noise cancelling", "tws earphones"],
            "es": ["audifonos bluetooth", "auriculares inalambricos"],
            "fr": ["ecouteurs bluetooth", "casque sans fil"],
            "ja": ["ワイヤレスイヤホン", "ブルートゥース ヘッドホン"],
            "ko": ["무선 이어폰", "블루투스 헤드폰"],
            "pt": ["fone de ouvido bluetooth", "fone sem fio"],
            "th": ["หูฟังบลูทูธ", "หูฟังไร้สาย"],
            "de": ["bluetooth kopfhörer", "kabellose ohrhörer"],
            "it": ["auricolari bluetooth", "cuffie wireless"],
            "pl": ["słuchawki bezprzewodowe", "słuchawki bluetooth"],
            "ar": ["سماعات بلوتوث", "سماعة لاسلكية"],
            "vn": ["tai nghe bluetooth", "tai nghe không dây"],
            "id": ["headset bluetooth", "earphone wireless"],
        },
    },
    {
        "paths": ["consumer electronics,wearable technology,smartwatches"],
        "titles": [
            "Smart Watch Men Women 1.96 inch AMOLED Bluetooth Call Heart Rate Fitness Tracker",
            "Kids Smart Watch 4G GPS Tracker SOS Video Call Waterproof",
            "Smartwatch for Android iOS Blood Oxygen Sleep Monitor Sport Bracelet",
        ],
        "local_titles": {"es": ["Reloj inteligente para hombre y mujer con llamadas Bluetooth"]},
        "queries": {
            "en": ["smart watch", "smartwatch women", "fitness tracker"],
            "es": ["reloj inteligente", "smartwatch mujer"],
            "fr": ["montre connectée", "montre connectee femme"],
            "ja": ["スマートウォッチ", "スマートウォッチ レディース"],
            "ko": ["스마트워치", "어린이 스마트워치"],
            "pt": ["relogio inteligente", "smartwatch feminino"],
            "th": ["นาฬิกาสมาร์ทวอทช์", "สมาร์ทวอทช์"],
            "de": ["smartwatch damen", "fitness uhr"],
            "it": ["orologio smart", "smartwatch uomo"],
            "pl": ["smartwatch damski", "zegarek sportowy"],
            "ar": ["ساعة ذكية", "ساعه سمارت"],
            "vn": ["đồng hồ thông minh"],
            "id": ["jam tangan pintar", "smartwatch anak"],
        },
    },
    {
        "paths": ["women's clothing,dresses,casual dresses"],
        "titles": [
            "Summer Floral Print Midi Dress Women Elegant V Neck Short Sleeve Beach Dress",
            "Women's Black Bodycon Party Dress Sexy Long Sleeve Evening Mini Dress",
            "Vintage Boho Maxi Dress Casual Loose Cotton Linen Sundress",
        ],
        "local_titles": {"fr": ["Robe longue bohème d'été pour femme à fleurs"], "pt": ["Vestido Midi Floral Feminino Verão"]},
        "queries": {
            "en": ["summer dress women", "black party dress", "floral maxi dress"],
            "es": ["vestido de mujer", "vestidos de fiesta", "vestido largo verano"],
            "fr": ["robe femme ete", "robe de soirée", "robe longue"],
            "ja": ["ワンピース 夏", "ドレス パーティー"],
            "ko": ["원피스 여름", "롱원피스"],
            "pt": ["vestido feminino", "vestido de festa", "vestido longo"],
            "th": ["ชุดเดรส", "เดรสยาว"],
            "de": ["sommerkleid damen", "abendkleid"],
            "it": ["vestito donna estivo", "abito da sera"],
            "pl": ["sukienka letnia", "sukienka na wesele"],
            "ar": ["فستان سهرة", "فساتين صيفي"],
            "vn": ["váy nữ", "đầm dự tiệc"],
            "id": ["dress wanita", "gaun pesta"],
        },
    },
    {
        "paths": ["shoes,men's shoes,men's casual shoes", "sports & entertainment,sneakers,running shoes"],
        "titles": [
            "Men's Sneakers Breathable Mesh Running Shoes Lightweight Casual Walking Shoes",
            "Classic White Sneakers Men Leather Flat Casual Shoes",
            "Air Cushion Running Shoes for Men Non-slip Sports Trainers",
        ],
        "local_titles": {"es": ["Zapatillas deportivas de hombre transpirables para correr"]},
        "queries": {
            "en": ["mens sneakers", "running shoes men", "white sneakers"],
            "es": ["zapatillas hombre", "tenis para correr"],
            "fr": ["baskets homme", "chaussures de course"],
            "ja": ["スニーカー メンズ", "ランニングシューズ"],
            "ko": ["남자 운동화", "런닝화"],
            "pt": ["tenis masculino", "tênis de corrida"],
            "th": ["รองเท้าผ้าใบผู้ชาย", "รองเท้าวิ่ง"],
            "de": ["sneaker herren", "laufschuhe"],
            "it": ["scarpe da ginnastica uomo", "sneakers"],
            "pl": ["buty sportowe męskie", "adidasy"],
            "ar": ["حذاء رياضي رجالي", "كوتشي"],
            "vn": ["giày thể thao nam", "giày chạy bộ"],
            "id": ["sepatu sneakers pria", "sepatu lari"],
        },
    },
    {
        "paths": ["beauty & health,makeup,lip makeup,lipsticks"],
        "titles": [
            "Matte Velvet Lipstick Waterproof Long Lasting Nude Red Lip Makeup 12 Colors",
            "Lip Gloss Set Moisturizing Liquid Lipstick Non-stick Cup",
            "Lip Tint Korean Makeup Water Light Mirror Lip Glaze",
        ],
        "local_titles": {"ko": ["립틴트 물광 글로우 립글레이즈"], "pt": ["Batom Matte Longa Duração à Prova d'Água"]},
        "queries": {
            "en": ["matte lipstick", "lip gloss", "red lipstick waterproof"],
            "es": ["labial mate", "pintalabios rojo"],
            "fr": ["rouge a levre mat", "gloss"],
            "ja": ["リップ ティント", "口紅 マット"],
            "ko": ["립스틱", "립틴트"],
            "pt": ["batom matte", "gloss labial"],
            "th": ["ลิปสติก", "ลิปแมท"],
            "de": ["lippenstift matt"],
            "it": ["rossetto opaco", "lucidalabbra"],
            "pl": ["pomadka matowa", "błyszczyk"],
            "ar": ["روج مات", "احمر شفاه"],
            "vn": ["son môi", "son kem lì"],
            "id": ["lipstik matte", "lip tint"],
        },
    },
    {
        "paths": ["beauty & health,nail art & tools,nail gel"],
        "titles": [
            "15ml Gel Nail Polish Semi Permanent UV LED Soak Off Varnish Glitter",
            "Nail Art Kit with UV Lamp and 10 Colors Gel Polish Set",
            "Rubber Base Coat and Top Coat Gel for Manicure",
        ],
        "local_titles": {"es": ["Esmalte de uñas en gel semipermanente UV LED 15 ml"]},
        "queries": {
            "en": ["gel nail polish", "uv nail kit", "nail art"],
            "es": ["esmalte semipermanente", "uñas de gel"],
            "fr": ["vernis semi permanent", "kit ongles gel"],
            "ja": ["ジェルネイル", "ネイル セット"],
            "ko": ["젤네일", "네일 스티커"],
            "pt": ["esmalte em gel", "kit unha gel"],
            "th": ["สีเจล", "ยาทาเล็บเจล"],
            "de": ["gel nagellack", "nagel set uv"],
            "it": ["smalto semipermanente"],
            "pl": ["lakier hybrydowy", "zestaw do hybryd"],
            "ar": ["طلاء اظافر جل"],
            "vn": ["sơn gel", "sơn móng tay"],
            "id": ["kutek gel", "nail art set"],
        },
    },
    {
        "paths": ["jewelry & accessories,fine jewelry,silver rings", "jewelry & accessories,fashion jewelry,fashion rings"],
        "titles": [
            "925 Sterling Silver Ring for Women Adjustable Open Zircon Wedding Band",
            "Stainless Steel Couple Rings Set Minimalist Engagement Ring Gift",
            "Vintage Gold Color Signet Ring Men Hip Hop Jewelry",
        ],
        "local_titles": {"fr": ["Bague en argent 925 pour femme réglable avec zircon"]},
        "queries": {
            "en": ["silver ring women", "couple rings", "engagement ring"],
            "es": ["anillo de plata", "anillos de pareja"],
            "fr": ["bague argent 925", "bague femme"],
            "ja": ["指輪 シルバー", "ペアリング"],
            "ko": ["반지 은", "커플링"],
            "pt": ["anel de prata", "aliança de namoro"],
            "th": ["แหวนเงิน", "แหวนคู่"],
            "de": ["ring silber damen", "verlobungsring"],
            "it": ["anello argento", "fedi nuziali"],
            "pl": ["pierścionek srebrny", "obrączki"],
            "ar": ["خاتم فضة", "دبل خطوبة"],
            "vn": ["nhẫn bạc nữ", "nhẫn đôi"],
            "id": ["cincin perak", "cincin couple"],
        },
    },
    {
        "paths": ["jewelry & accessories,fashion jewelry,earrings"],
        "titles": [
            "Korean Pearl Drop Earrings for Women Gold Color Dangle Earrings",
            "Small Hoop Earrings Stainless Steel Huggie Earrings Minimalist",
            "Butterfly Stud Earrings Set 6 Pairs Cute Girls Jewelry",
        ],
        "local_titles": {"ja": ["パール ピアス レディース ゴールド 揺れる"]},
        "queries": {
            "en": ["pearl earrings", "hoop earrings gold", "stud earrings set"],
            "es": ["aretes de perla", "pendientes mujer"],
            "fr": ["boucle d'oreille perle", "boucles d oreilles créoles"],
            "ja": ["ピアス", "イヤリング パール"],
            "ko": ["귀걸이", "진주 귀걸이"],
            "pt": ["brinco de perola", "brincos argola"],
            "th": ["ต่างหู", "ต่างหูมุก"],
            "de": ["ohrringe perlen", "creolen gold"],
            "it": ["orecchini perle", "orecchini cerchio"],
            "pl": ["kolczyki perły", "kolczyki koła"],
            "ar": ["حلق لولي", "اقراط ذهبي"],
            "vn": ["bông tai ngọc trai", "khuyên tai"],
            "id": ["anting mutiara", "anting korea"],
        },
    },
    {
        "paths": ["automobiles, parts & accessories,interior accessories,car holders, stands & mounts"],
        "titles": [
            "Magnetic Car Phone Holder Air Vent Mount 360 Rotation for iPhone Samsung",
            "Dashboard Suction Cup Car Mount Gravity Phone Stand Universal",
            "15W Wireless Charger Car Holder Auto Clamping Air Vent Bracket",
        ],
        "local_titles": {"pt": ["Suporte Veicular Magnético para Celular Saída de Ar"]},
        "queries": {
            "en": ["car phone holder", "magnetic car mount", "phone holder for car vent"],
            "es": ["soporte celular auto", "soporte movil coche"],
            "fr": ["support telephone voiture", "support magnetique voiture"],
            "ja": ["車載ホルダー", "スマホホルダー 車"],
            "ko": ["차량용 거치대", "핸드폰 거치대 차량"],
            "pt": ["suporte celular carro", "suporte veicular"],
            "th": ["ที่วางโทรศัพท์ในรถ", "ที่จับมือถือในรถ"],
            "de": ["handyhalterung auto", "kfz halterung"],
            "it": ["porta cellulare auto", "supporto telefono auto"],
            "pl": ["uchwyt na telefon do samochodu"],
            "ar": ["حامل جوال للسيارة", "ستاند موبايل عربية"],
            "vn": ["giá đỡ điện thoại ô tô"],
            "id": ["holder hp mobil", "dudukan hp mobil"],
        },
    },
    {
        "paths": ["automobiles, parts & accessories,car lighting,led headlight bulbs"],
        "titles": [
            "H4 H7 LED Headlight Bulbs 20000LM 6000K Super Bright Car Lamp Canbus",
            "2PCS H11 H8 LED Fog Light Bulb Car Headlamp Plug and Play",
            "9005 HB3 LED Car Headlight Kit Fanless Mini Size",
        ],
        "local_titles": {"es": ["Bombillas LED H4 para faros de coche 6000K Canbus"]},
        "queries": {
            "en": ["h4 led bulb", "led headlight h7", "car fog light bulb"],
            "es": ["focos led h4", "luces led para carro"],
            "fr": ["ampoule led h7", "phare led voiture"],
            "ja": ["h4 led ヘッドライト", "フォグランプ led"],
            "ko": ["h7 led 전조등", "자동차 led 전구"],
            "pt": ["lampada led h4", "super led farol"],
            "th": ["หลอดไฟหน้ารถ led", "ไฟ led h4"],
            "de": ["h7 led birne", "led scheinwerfer auto"],
            "it": ["lampade led h7", "fari led auto"],
            "pl": ["żarówki led h7", "lampy led samochodowe"],
            "ar": ["لمبات ليد للسيارة", "كشاف h4"],
            "vn": ["đèn pha led ô tô", "bóng đèn h4"],
            "id": ["lampu led mobil h4", "lampu utama led"],
        },
    },
    {
        "paths": ["lights & lighting,led lighting,led strips"],
        "titles": [
            "5M RGB LED Strip Lights Bluetooth App Control Music Sync for Room Decoration",
            "USB 5V LED Strip TV Backlight 2835 Flexible Tape Light",
            "COB LED Strip 12V High Density Linear Light Warm White",
        ],
        "local_titles": {"fr": ["Ruban LED RGB 5 m avec télécommande pour chambre"]},
        "queries": {
            "en": ["led strip lights", "rgb led strip bedroom", "tv backlight led"],
            "es": ["tira led", "luces led para cuarto"],
            "fr": ["ruban led", "bande led chambre"],
            "ja": ["ledテープ", "テープライト"],
            "ko": ["led 스트립", "led 줄조명"],
            "pt": ["fita led", "fita de led rgb"],
            "th": ["ไฟเส้น led", "ไฟแต่งห้อง"],
            "de": ["led streifen", "led band"],
            "it": ["striscia led", "strisce led rgb"],
            "pl": ["taśma led", "pasek led"],
            "ar": ["شريط ليد", "اضاءة ليد للغرفة"],
            "vn": ["đèn led dây", "dây đèn led rgb"],
            "id": ["lampu strip led", "lampu led kamar"],
        },
    },
    {
        "paths": ["home & garden,kitchen, dining & bar,kitchen knives & accessories,kitchen knives,chef knives"],
        "titles": [
            "8 Inch Chef Knife Damascus Steel Japanese Kitchen Knife with Wood Handle",
            "Stainless Steel Kitchen Knife Set 6 Pieces with Block Professional Cooking Knives",
            "Santoku Knife 7 Inch High Carbon Steel Vegetable Cutter",
        ],
        "local_titles": {"ja": ["三徳包丁 ダマスカス鋼 日本製 スタイル"]},
        "queries": {
            "en": ["chef knife", "kitchen knife set", "damascus knife"],
            "es": ["cuchillo de cocina", "juego de cuchillos"],
            "fr": ["couteau de cuisine", "couteau japonais"],
            "ja": ["包丁", "三徳包丁"],
            "ko": ["식칼", "주방칼 세트"],
            "pt": ["faca de cozinha", "jogo de facas"],
            "th": ["มีดทำครัว", "มีดเชฟ"],
            "de": ["küchenmesser", "messerset"],
            "it": ["coltello da cucina", "set coltelli"],
            "pl": ["nóż kuchenny", "zestaw noży"],
            "ar": ["سكاكين مطبخ", "سكينة شيف"],
            "vn": ["dao nhà bếp", "bộ dao"],
            "id": ["pisau dapur", "set pisau"],
        },
    },
    {
        "paths": ["home & garden,home textile,bedding,bedding sets"],
        "titles": [
            "Cotton Bedding Set Queen Size Duvet Cover Flat Sheet Pillowcases 4pcs",
            "Nordic Style Solid Color Quilt Cover Set Double Bed Linen",
            "Fitted Bed Sheet with Elastic Band Microfiber Mattress Cover",
        ],
        "local_titles": {"pt": ["Jogo de Cama Casal Queen 4 Peças Algodão"]},
        "queries": {
            "en": ["bedding set queen", "duvet cover", "fitted sheet"],
            "es": ["juego de sabanas", "funda nordica"],
            "fr": ["parure de lit", "housse de couette"],
            "ja": ["布団カバー セット", "シーツ"],
            "ko": ["침구세트", "이불커버"],
            "pt": ["jogo de cama casal", "lençol"],
            "th": ["ชุดผ้าปูที่นอน", "ผ้าปูที่นอน"],
            "de": ["bettwäsche set", "spannbettlaken"],
            "it": ["copripiumino", "lenzuola matrimoniali"],
            "pl": ["pościel komplet", "prześcieradło"],
            "ar": ["مفارش سرير", "طقم ملايات"],
            "vn": ["bộ chăn ga gối", "ga giường"],
            "id": ["sprei set", "bed cover"],
        },
    },
    {
        "paths": ["home & garden,pet products,dog supplies,dog collars, harnesses & leads"],
        "titles": [
            "Adjustable Dog Harness No Pull Reflective Vest for Small Medium Dogs with Leash",
            "Personalized Dog Collar Engraved Name Tag Nylon Puppy Collar",
            "Retractable Dog Leash 5M Automatic Walking Lead",
        ],
        "local_titles": {"es": ["Arnés para perro ajustable reflectante con correa"]},
        "queries": {
            "en": ["dog harness", "dog collar personalized", "retractable leash"],
            "es": ["arnes para perro", "collar perro"],
            "fr": ["harnais chien", "collier chien"],
            "ja": ["犬 ハーネス", "首輪 犬"],
            "ko": ["강아지 하네스", "강아지 목줄"],
            "pt": ["peitoral para cachorro", "coleira cachorro"],
            "th": ["สายจูงสุนัข", "ปลอกคอหมา"],
            "de": ["hundegeschirr", "hundehalsband"],
            "it": ["pettorina cane", "guinzaglio"],
            "pl": ["szelki dla psa", "obroża dla psa"],
            "ar": ["طوق كلب", "حزام للكلاب"],
            "vn": ["vòng cổ chó", "dây dắt chó"],
            "id": ["harness anjing", "kalung anjing"],
        },
    },
    {
        "paths": ["sports & entertainment,fishing,lures & baits"],
        "titles": [
            "10PCS Minnow Fishing Lures Set Hard Bait Crankbait Wobblers 3D Eyes",
            "Soft Silicone Fishing Lure Shad Worm Bass Bait 20pcs",
            "Metal Spoon Jig Lure Sea Fishing 20g 30g 40g",
        ],
        "local_titles": {"fr": ["Leurres de pêche souples 20 pièces pour brochet et perche"]},
        "queries": {
            "en": ["fishing lures", "crankbait bass", "soft bait"],
            "es": ["señuelos de pesca", "senuelos pesca"],
            "fr": ["leurre peche", "leurres souples"],
            "ja": ["ルアー", "ミノー ルアー"],
            "ko": ["루어", "낚시 미끼"],
            "pt": ["isca artificial", "iscas para pesca"],
            "th": ["เหยื่อปลอม", "เหยื่อตกปลา"],
            "de": ["angelköder", "wobbler"],
            "it": ["esche artificiali", "artificiali spinning"],
            "pl": ["przynęty wędkarskie", "woblery"],
            "ar": ["طعم صيد السمك"],
            "vn": ["mồi câu cá", "mồi giả"],
            "id": ["umpan pancing", "umpan casting"],
        },
    },
    {
        "paths": ["luggage & bags,travel backpacks"],
        "titles": [
            "Men's Laptop Backpack 15.6 Inch USB Charging Waterproof Travel Bag",
            "Women Mini Backpack Nylon School Bag for Teenage Girls",
            "Large Capacity Hiking Backpack 40L Outdoor Camping Rucksack",
        ],
        "local_titles": {"es": ["Mochila para portátil de 15,6 pulgadas impermeable con USB"]},
        "queries": {
            "en": ["laptop backpack", "school backpack girls", "hiking backpack 40l"],
            "es": ["mochila", "mochila escolar"],
            "fr": ["sac a dos", "sac à dos ordinateur"],
            "ja": ["リュック", "リュックサック レディース"],
            "ko": ["백팩", "노트북 가방"],
            "pt": ["mochila notebook", "mochila escolar feminina"],
            "th": ["กระเป๋าเป้", "เป้โน๊ตบุ๊ค"],
            "de": ["rucksack damen", "laptop rucksack"],
            "it": ["zaino", "zaino porta pc"],
            "pl": ["plecak szkolny", "plecak na laptopa"],
            "ar": ["شنطة ظهر", "حقيبة لابتوب"],
            "vn": ["balo laptop", "ba lô đi học"],
            "id": ["tas ransel", "tas laptop"],
        },
    },
    {
        "paths": ["toys & hobbies,building toys,building blocks"],
        "titles": [
            "1200PCS City Building Blocks Set Creative Bricks Kids Educational Toys",
            "Technic Sports Car Model Building Kit MOC Bricks Compatible",
            "Mini Figures Building Blocks Anime Character Toys Gift",
        ],
        "local_titles": {"pt": ["Blocos de Montar 1000 Peças Brinquedo Educativo Infantil"]},
        "queries": {
            "en": ["building blocks", "lego compatible", "technic car blocks"],
            "es": ["bloques de construccion", "lego"],
            "fr": ["jeu de construction", "briques lego"],
            "ja": ["ブロック おもちゃ", "レゴ 互換"],
            "ko": ["블록 장난감", "레고 호환"],
            "pt": ["blocos de montar", "lego compativel"],
            "th": ["ตัวต่อเลโก้", "บล็อกตัวต่อ"],
            "de": ["klemmbausteine", "bausteine kinder"],
            "it": ["mattoncini", "costruzioni bambini"],
            "pl": ["klocki", "klocki technic"],
            "ar": ["مكعبات ليغو", "العاب تركيب"],
            "vn": ["đồ chơi lắp ráp", "lego"],
            "id": ["mainan lego", "balok susun"],
        },
    },
    {
        "paths": ["hair extensions & wigs,human hair wigs,lace front wigs"],
        "titles": [
            "13x4 HD Lace Front Wig Human Hair Body Wave Brazilian Remy 30 Inch",
            "Bob Wig Short Straight Lace Frontal Human Hair Wigs for Black Women",
            "Glueless Wig Pre Plucked Deep Wave 5x5 Closure Wig",
        ],
        "local_titles": {"pt": ["Peruca Lace Front Cabelo Humano Ondulado 60 cm"]},
        "queries": {
            "en": ["lace front wig human hair", "bob wig", "glueless wig"],
            "es": ["peluca de cabello humano", "pelucas lace"],
            "fr": ["perruque cheveux naturels", "perruque lace front"],
            "ja": ["ウィッグ 人毛", "フルウィッグ"],
            "ko": ["가발 인모", "통가발"],
            "pt": ["peruca lace front", "peruca cabelo humano"],
            "th": ["วิกผมแท้", "วิกผม"],
            "de": ["echthaar perücke", "perücke damen"],
            "it": ["parrucca capelli veri", "parrucca lace"],
            "pl": ["peruka naturalna", "peruka z włosów ludzkich"],
            "ar": ["باروكة شعر طبيعي"],
            "vn": ["tóc giả nữ", "tóc giả thật"],
            "id": ["wig rambut asli", "rambut palsu"],
        },
    },
    {
        "paths": ["tools,power tools,electric drills"],
        "titles": [
            "21V Cordless Drill Electric Screwdriver with 2 Lithium Batteries Impact Drill",
            "Brushless Hammer Drill 13mm Chuck Compatible with Makita 18V Battery",
            "Mini Electric Screwdriver Set Rechargeable USB 3.6V",
        ],
        "local_titles": {"es": ["Taladro inalámbrico 21V con 2 baterías de litio y maletín"]},
        "queries": {
            "en": ["cordless drill", "impact driver", "electric screwdriver"],
            "es": ["taladro inalambrico", "atornillador electrico"],
            "fr": ["perceuse sans fil", "visseuse"],
            "ja": ["電動ドリル", "インパクトドライバー"],
            "ko": ["전동드릴", "충전 드릴"],
            "pt": ["furadeira sem fio", "parafusadeira"],
            "th": ["สว่านไร้สาย", "สว่านไฟฟ้า"],
            "de": ["akkuschrauber", "bohrmaschine"],
            "it": ["trapano avvitatore", "trapano a batteria"],
            "pl": ["wkrętarka", "wiertarka akumulatorowa"],
            "ar": ["دريل شحن", "مفك كهربائي"],
            "vn": ["máy khoan pin", "máy bắt vít"],
            "id": ["bor listrik", "bor cordless"],
        },
    },
    {
        "paths": ["consumer electronics,video games,gamepads"],
        "titles": [
            "Wireless Gamepad for PS4 Controller Bluetooth Dual Vibration Joystick",
            "Switch Pro Controller Wireless with Turbo and Motion Control",
            "Mobile Game Controller for Android iPhone Telescopic Gamepad",
        ],
        "local_titles": {"fr": ["Manette sans fil pour PS4 avec double vibration"]},
        "queries": {
            "en": ["ps4 controller", "switch pro controller", "gamepad android"],
            "es": ["control ps4", "mando switch"],
            "fr": ["manette ps4", "manette switch"],
            "ja": ["ゲームパッド", "プロコン スイッチ"],
            "ko": ["게임패드", "ps4 컨트롤러"],
            "pt": ["controle ps4", "controle sem fio"],
            "th": ["จอยเกม", "จอย ps4"],
            "de": ["ps4 controller kabellos", "gamepad"],
            "it": ["controller ps4", "joystick"],
            "pl": ["pad do ps4", "kontroler switch"],
            "ar": ["دراع بلايستيشن 4", "يد تحكم"],
            "vn": ["tay cầm chơi game", "tay cầm ps4"],
            "id": ["stik ps4", "gamepad hp"],
        },
    },
    {
        "paths": ["novelty & special use,costumes & accessories,anime costumes"],
        "titles": [
            "Anime Demon Slayer Cosplay Costume Kimono Full Set Halloween",
            "Genshin Impact Cosplay Outfit Wig and Accessories Women",
            "Naruto Akatsuki Cloak Cosplay Costume Unisex",
        ],
        "local_titles": {"ja": ["鬼滅の刃 コスプレ 衣装 フルセット"]},
        "queries": {
            "en": ["anime cosplay costume", "demon slayer cosplay", "halloween costume anime"],
            "es": ["disfraz anime", "cosplay naruto"],
            "fr": ["costume cosplay anime", "deguisement manga"],
            "ja": ["コスプレ 衣装", "鬼滅 コスプレ"],
            "ko": ["코스프레 의상", "애니 코스튬"],
            "pt": ["fantasia anime", "cosplay naruto"],
            "th": ["ชุดคอสเพลย์", "ชุดอนิเมะ"],
            "de": ["anime kostüm", "cosplay kostüm"],
            "it": ["costume cosplay", "vestito anime"],
            "pl": ["strój cosplay", "przebranie anime"],
            "ar": ["ملابس انمي", "كوسبلاي"],
            "vn": ["đồ cosplay anime"],
            "id": ["kostum cosplay", "baju anime"],
        },
    },
]

# Query decorations that real users add; applied at random, never changing which product is meant.
QUERY_EXTRAS = {
    "en": ["cheap", "2024", "for women", "for men", "set", "original"],
    "es": ["barato", "mujer", "hombre", "original", "2024"],
    "fr": ["pas cher", "femme", "homme", "lot"],
    "ja": ["安い", "レディース", "メンズ", "人気"],
    "ko": ["저렴한", "여성", "남성", "세트"],
    "pt": ["barato", "feminino", "masculino", "original"],
    "th": ["ราคาถูก", "ผู้หญิง", "ผู้ชาย"],
    "de": ["günstig", "damen", "herren"],
    "it": ["economico", "donna", "uomo"],
    "pl": ["tanie", "damskie", "męskie"],
    "ar": ["رخيص", "نسائي", "رجالي"],
    "vn": ["giá rẻ", "nữ", "nam"],
    "id": ["murah", "wanita", "pria"],
}

# Hand-made messy forms of otherwise normal queries.
def messy(query: str, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return "  " + query.replace(" ", "   ") + " "
    if choice == 1:
        return query.upper()
    if choice == 2:
        return " ".join(w.capitalize() for w in query.split(" "))
    return query + "\t"


def make_query(concept, language, rng):
    query = rng.choice(concept["queries"][language])
    if rng.random() < 0.2:
        query = f"{query} {rng.choice(QUERY_EXTRAS[language])}"
    return query


def negative_concept(index, rng):
    # A third of the negatives come from the same department (level 1), the rest from anywhere else.
    department = CONCEPTS[index]["paths"][0].split(",")[0]
    same = [i for i, c in enumerate(CONCEPTS) if i != index and c["paths"][0].split(",")[0] == department]
    if same and rng.random() < 0.35:
        return rng.choice(same)
    return rng.choice([i for i in range(len(CONCEPTS)) if i != index])


def make_title(concept, language, rng):
    local = concept.get("local_titles", {}).get(language)
    if local and rng.random() < 0.4:
        return rng.choice(local)
    return rng.choice(concept["titles"])


def generate(task: str, languages, n_queries: int, labelled: bool, first_id: int, rng: random.Random):
    rows = []
    for _ in range(n_queries):
        language = rng.choice(languages)
        index = rng.randrange(len(CONCEPTS))
        concept = CONCEPTS[index]
        query = make_query(concept, language, rng)
        if rng.random() < 0.05:
            query = messy(query, rng)
        # Several targets per query, as in the competition: mostly relevant ones, some not. A concept has only
        # one or two category paths, so QC draws its relevant rows from those and fewer negatives.
        if task == "qc":
            relevant_flags = [True] * len(concept["paths"]) + [False] * rng.choice([0, 0, 0, 0, 0, 0, 1, 1, 2])
            if len(relevant_flags) > 1 and rng.random() < 0.3:
                relevant_flags.pop(0)
            paths = list(concept["paths"])
            rng.shuffle(paths)
        else:
            relevant_flags = [rng.random() < 0.7 for _ in range(rng.choice([1, 1, 2, 2, 3, 4]))]
        for relevant in relevant_flags:
            source = concept if relevant else CONCEPTS[negative_concept(index, rng)]
            row = {"id": None, "task": task.upper(), "language": language, "origin_query": query}
            if task == "qc":
                row["category_path"] = paths.pop() if relevant else rng.choice(source["paths"])
            else:
                row["item_title"] = make_title(source, language, rng)
            if labelled:
                row["label"] = int(relevant)
            rows.append(row)
    # Drop exact repeats (same query and target): the competition has one label per pair.
    seen, unique = set(), []
    for row in rows:
        key = (row["origin_query"], row.get("category_path", row.get("item_title")))
        if key not in seen:
            seen.add(key)
            unique.append(row)
    rng.shuffle(unique)
    for offset, row in enumerate(unique):
        row["id"] = first_id + offset
    return unique


def add_messy_rows(rows, task, labelled, rng):
    """The few deliberately messy rows the pipeline must handle (see README.md)."""
    target = "category_path" if task == "qc" else "item_title"
    language = "en"
    base = {"task": task.upper(), "language": language}
    concept = CONCEPTS[0]
    extra = [
        {**base, "origin_query": "", target: concept["paths"][0] if task == "qc" else concept["titles"][0]},
        {**base, "origin_query": "   iPhone   15  CASE  ", target: concept["paths"][0] if task == "qc" else concept["titles"][1]},
    ]
    if task == "qi":
        extra.append({**base, "origin_query": "wireless earbuds", target: None})
        extra.append({**base, "origin_query": "usb c cable", target: "   "})
    else:
        # Mixed-case path; the level "Kitchen, Dining & Bar" keeps its ", ".
        extra.append({**base, "origin_query": "Chef Knife", target: "Home & Garden,Kitchen, Dining & Bar,Kitchen Knives & Accessories"})
    next_id = max(r["id"] for r in rows) + 1
    for offset, row in enumerate(extra):
        row = {"id": next_id + offset, **row}
        if labelled:
            row["label"] = 1 if row["origin_query"].strip() and row[target] and str(row[target]).strip() else 0
        # Keep the raw key order of the competition files.
        ordered = {k: row[k] for k in ("id", "task", "language", "origin_query", target, "label") if k in row}
        rows.insert(rng.randrange(len(rows) + 1), ordered)
    return rows


def write(rows, name):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    rng = random.Random(SEED)
    plan = [
        ("qc", "train_QC.jsonl", TRAIN_LANGUAGES["qc"], 260, True, 1),
        ("qi", "train_QI.jsonl", TRAIN_LANGUAGES["qi"], 190, True, 1),
        ("qc", "test_QC.jsonl", TEST_LANGUAGES["qc"], 150, False, 100001),
        ("qi", "test_QI.jsonl", TEST_LANGUAGES["qi"], 120, False, 100001),
    ]
    for task, name, languages, n_queries, labelled, first_id in plan:
        rows = generate(task, languages, n_queries, labelled, first_id, rng)
        rows = add_messy_rows(rows, task, labelled, rng)
        write(rows, name)
        positives = sum(r.get("label", 0) for r in rows)
        print(f"{name}: {len(rows)} rows" + (f", positive rate {positives / len(rows):.2f}" if labelled else ""))


if __name__ == "__main__":
    main()
