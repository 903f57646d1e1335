"""The smart-speaker grammar behind ``earmark corpus synth``: intents, templates, slot values.

Everything here is data. Intent and entity names follow SLURP (``scenario_action`` intents,
``artist_name``-style entity types). Texts come out already in the normalised spoken form
(``earmark.text.normalize(text) == text``: lower case, numbers and times in words) and entity
spans are character offsets recorded while a template is filled, never found by searching.

Template syntax, small on purpose:

- ``{type}`` a slot filled from ``SLOT_VALUES[type]`` and labelled as entity ``type``;
  ``{type:list}`` labels entity ``type`` but draws from ``SLOT_VALUES["type:list"]``.
- ``(a|b|c)`` one alternative, uniformly; an empty alternative ``(|x)`` is allowed.
- ``[x]`` optional, taken half of the time.

Groups nest and may contain slots. Words are rejoined with single spaces, so optional parts
never leave double spaces behind.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from earmark.errors import CorpusError
from earmark.records import Entity, Label, LabelSource
from earmark.text import number_to_words, ordinal_to_words

# --- slot values -------------------------------------------------------------------------


def _times() -> tuple[str, ...]:
    hours = [number_to_words(h) for h in range(1, 13)]
    minutes = ["", "fifteen", "thirty", "forty five", "oh five", "ten", "twenty", "fifty"]
    out: list[str] = ["noon", "midnight"]
    for h in hours:
        out += [f"{h} o'clock", f"half past {h}", f"quarter past {h}", f"quarter to {h}"]
        for m in minutes:
            base = f"{h} {m}".strip()
            out += [f"{base} a m", f"{base} p m"]
            if m:
                out.append(base)
    return tuple(out)


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def _dates() -> tuple[str, ...]:
    out = [
        "today",
        "tomorrow",
        "the day after tomorrow",
        "this weekend",
        "next weekend",
        "next week",
    ]
    out += list(_DAYS) + [f"this {d}" for d in _DAYS] + [f"next {d}" for d in _DAYS]
    for i, month in enumerate(_MONTHS):
        for day in (1 + i % 5, 9 + i % 7, 17 + i % 5, 21 + i % 8):
            out += [f"{month} {ordinal_to_words(day)}", f"the {ordinal_to_words(day)} of {month}"]
    return tuple(out)


SLOT_VALUES: Mapping[str, tuple[str, ...]] = {
    "artist_name": (
        "taylor swift",
        "adele",
        "the beatles",
        "queen",
        "ed sheeran",
        "beyonce",
        "drake",
        "coldplay",
        "rihanna",
        "elton john",
        "david bowie",
        "madonna",
        "bruno mars",
        "lady gaga",
        "the rolling stones",
        "bob dylan",
        "billie eilish",
        "katy perry",
        "michael jackson",
        "frank sinatra",
        "nirvana",
        "radiohead",
        "dua lipa",
        "the weeknd",
        "kendrick lamar",
        "stevie wonder",
        "abba",
        "fleetwood mac",
        "pink floyd",
        "miles davis",
        "ella fitzgerald",
        "johnny cash",
        "dolly parton",
        "shakira",
        "harry styles",
        "arctic monkeys",
        "oasis",
        "bob marley",
        "whitney houston",
        "justin bieber",
        "ariana grande",
        "the killers",
        "u two",
        "metallica",
        "eminem",
        "norah jones",
        "john legend",
        "sam smith",
        "lana del rey",
        "amy winehouse",
    ),
    "song_name": (
        "bohemian rhapsody",
        "hey jude",
        "shape of you",
        "rolling in the deep",
        "billie jean",
        "hotel california",
        "yesterday",
        "let it be",
        "imagine",
        "wonderwall",
        "someone like you",
        "bad guy",
        "blinding lights",
        "shake it off",
        "thriller",
        "purple rain",
        "smells like teen spirit",
        "sweet child of mine",
        "dancing queen",
        "like a rolling stone",
        "hallelujah",
        "respect",
        "yellow",
        "fix you",
        "viva la vida",
        "uptown funk",
        "halo",
        "umbrella",
        "single ladies",
        "perfect",
        "thinking out loud",
        "hello",
        "skyfall",
        "don't stop me now",
        "we will rock you",
        "another brick in the wall",
        "stairway to heaven",
        "take on me",
        "africa",
        "mr brightside",
        "levitating",
        "bad romance",
        "firework",
        "roar",
        "happy",
        "redemption song",
        "fly me to the moon",
        "my way",
        "jolene",
        "ring of fire",
    ),
    "playlist_name": (
        "workout",
        "chill",
        "party",
        "road trip",
        "dinner",
        "morning",
        "study",
        "focus",
        "summer hits",
        "throwback",
        "sleep",
        "running",
        "rainy day",
        "favourites",
        "cooking",
    ),
    "music_genre": (
        "jazz",
        "rock",
        "pop",
        "classical",
        "hip hop",
        "country",
        "blues",
        "reggae",
        "metal",
        "folk",
        "soul",
        "disco",
        "techno",
        "house",
        "punk",
        "indie",
        "opera",
        "rap",
        "funk",
        "gospel",
    ),
    "radio_name": (
        "radio one",
        "radio two",
        "radio four",
        "classic f m",
        "jazz f m",
        "capital",
        "heart",
        "kiss",
        "magic",
        "absolute radio",
        "smooth radio",
        "virgin radio",
        "b b c world service",
        "six music",
        "talk sport",
        "l b c",
        "kiss f m",
        "radio x",
        "n p r",
        "country one o five",
    ),
    "podcast_name": (
        "the daily",
        "serial",
        "this american life",
        "radiolab",
        "freakonomics",
        "stuff you should know",
        "the joe rogan experience",
        "planet money",
        "hardcore history",
        "no such thing as a fish",
        "desert island discs",
        "the infinite monkey cage",
        "in our time",
        "reply all",
        "song exploder",
        "the moth",
        "ted radio hour",
        "how i built this",
        "science vs",
        "the rest is history",
    ),
    "audiobook_name": (
        "harry potter",
        "pride and prejudice",
        "the hobbit",
        "the lord of the rings",
        "nineteen eighty four",
        "the great gatsby",
        "dune",
        "little women",
        "moby dick",
        "jane eyre",
        "the hunger games",
        "the da vinci code",
        "sapiens",
        "becoming",
        "the martian",
    ),
    "place_name": (
        "london",
        "paris",
        "new york",
        "tokyo",
        "berlin",
        "madrid",
        "rome",
        "dublin",
        "edinburgh",
        "glasgow",
        "manchester",
        "liverpool",
        "birmingham",
        "leeds",
        "bristol",
        "cardiff",
        "belfast",
        "boston",
        "chicago",
        "seattle",
        "san francisco",
        "los angeles",
        "miami",
        "toronto",
        "vancouver",
        "sydney",
        "melbourne",
        "mumbai",
        "delhi",
        "singapore",
        "hong kong",
        "beijing",
        "cape town",
        "nairobi",
        "cairo",
        "lisbon",
        "amsterdam",
        "brussels",
        "vienna",
        "prague",
        "warsaw",
        "stockholm",
        "oslo",
        "copenhagen",
        "helsinki",
        "athens",
        "istanbul",
        "mexico city",
        "rio de janeiro",
        "buenos aires",
        "oxford",
        "cambridge",
        "york",
        "brighton",
        "the airport",
        "the city centre",
        "the office",
        "the station",
        "the beach",
        "the hospital",
    ),
    "date": _dates(),
    "time": _times(),
    "timeofday": (
        "tonight",
        "this morning",
        "this afternoon",
        "this evening",
        "in the morning",
        "at night",
        "later today",
        "at lunchtime",
    ),
    "person": (
        "john",
        "mary",
        "james",
        "sarah",
        "david",
        "emma",
        "michael",
        "olivia",
        "daniel",
        "sophie",
        "peter",
        "anna",
        "tom",
        "lucy",
        "chris",
        "kate",
        "paul",
        "laura",
        "mark",
        "rachel",
        "steve",
        "jessica",
        "alex",
        "hannah",
        "ben",
        "charlotte",
        "sam",
        "grace",
        "jack",
        "emily",
        "george",
        "amelia",
        "harry",
        "isla",
        "oliver",
        "mia",
        "raj",
        "priya",
        "mohammed",
        "fatima",
        "wei",
        "yuki",
        "carlos",
        "maria",
        "ahmed",
        "ines",
        "liam",
        "chloe",
        "noah",
        "zoe",
    ),
    "relation": (
        "mum",
        "mom",
        "dad",
        "wife",
        "husband",
        "sister",
        "brother",
        "boss",
        "friend",
        "grandma",
        "grandpa",
        "son",
        "daughter",
        "partner",
        "aunt",
        "uncle",
    ),
    "house_place": (
        "kitchen",
        "living room",
        "bedroom",
        "bathroom",
        "hallway",
        "dining room",
        "office",
        "study",
        "garage",
        "garden",
        "basement",
        "attic",
        "kids room",
        "guest room",
        "porch",
        "lounge",
        "landing",
    ),
    "device_type:cleaner": (
        "vacuum",
        "vacuum cleaner",
        "robot vacuum",
        "hoover",
        "roomba",
        "robot cleaner",
        "mop",
    ),
    "change_amount": (
        "fifty percent",
        "twenty percent",
        "ten percent",
        "thirty percent",
        "seventy five percent",
        "half",
        "a little",
        "a bit",
        "twenty five percent",
        "eighty percent",
    ),
    "coffee_type": (
        "latte",
        "cappuccino",
        "espresso",
        "black coffee",
        "flat white",
        "americano",
        "mocha",
        "macchiato",
        "decaf",
        "white coffee",
    ),
    "event_name": (
        "dentist appointment",
        "team meeting",
        "doctor's appointment",
        "lunch with the team",
        "book club",
        "yoga class",
        "piano lesson",
        "job interview",
        "birthday party",
        "parents evening",
        "football practice",
        "haircut",
        "project review",
        "conference call",
        "dinner reservation",
        "gym session",
        "board meeting",
        "school run",
        "vet appointment",
        "swimming lesson",
        "wedding rehearsal",
        "coffee with friends",
        "date night",
        "sales call",
        "standup",
    ),
    "weather_descriptor": (
        "sunny",
        "rainy",
        "cold",
        "hot",
        "windy",
        "cloudy",
        "foggy",
        "warm",
        "humid",
        "freezing",
        "stormy",
        "snowy",
        "dry",
        "wet",
    ),
    "weather_descriptor:item": ("an umbrella", "a coat", "sunscreen", "a jacket", "boots"),
    "list_name": (
        "shopping",
        "grocery",
        "to do",
        "packing",
        "christmas",
        "birthday",
        "reading",
        "work",
        "chores",
        "wish",
        "party",
        "gift",
    ),
    "food_type:grocery": (
        "milk",
        "eggs",
        "bread",
        "butter",
        "cheese",
        "apples",
        "bananas",
        "coffee",
        "tea",
        "rice",
        "pasta",
        "tomatoes",
        "onions",
        "potatoes",
        "chicken",
        "yoghurt",
        "orange juice",
        "cereal",
        "washing up liquid",
        "toilet paper",
        "olive oil",
        "carrots",
        "flour",
        "sugar",
        "dog food",
    ),
    "food_type:dish": (
        "pizza",
        "sushi",
        "chicken curry",
        "pad thai",
        "a burger",
        "fish and chips",
        "noodles",
        "a kebab",
        "tacos",
        "fried chicken",
        "a salad",
        "lasagne",
        "dim sum",
        "a burrito",
        "ramen",
        "falafel",
        "lamb biryani",
        "spring rolls",
    ),
    "business_name": (
        "domino's",
        "pizza hut",
        "mcdonald's",
        "burger king",
        "kfc",
        "nando's",
        "wagamama",
        "subway",
        "pret",
        "the golden dragon",
        "the curry house",
        "papa john's",
        "five guys",
        "itsu",
        "yo sushi",
        "the local chippy",
        "taco bell",
        "wasabi",
    ),
    "transport_type": (
        "train",
        "bus",
        "tram",
        "taxi",
        "ferry",
        "coach",
        "tube",
        "subway",
        "flight",
        "uber",
    ),
    "news_topic": (
        "politics",
        "sport",
        "football",
        "technology",
        "science",
        "business",
        "the economy",
        "the election",
        "health",
        "climate change",
        "the stock market",
        "entertainment",
        "world news",
        "space",
        "cricket",
        "tennis",
    ),
    "media_type": (
        "the b b c",
        "c n n",
        "the guardian",
        "the times",
        "sky news",
        "reuters",
        "the new york times",
        "al jazeera",
        "the independent",
        "fox news",
    ),
    "joke_type": ("funny", "dad", "knock knock", "animal", "science", "short", "silly", "clean"),
}

# --- intents -----------------------------------------------------------------------------

INTENT_TEMPLATES: Mapping[str, tuple[str, ...]] = {
    "play_music": (
        "[please ](play|put on) [some ]{artist_name}",
        "(play|put on) {song_name} [by {artist_name}]",
        "i (want|would like) to (hear|listen to) {song_name}",
        "(play|start) [some ]{music_genre} [music] [in the {house_place}]",
        "(play|shuffle) my {playlist_name} playlist",
        "can you play {song_name} by {artist_name}",
        "play (music|songs|something) by {artist_name}",
        "(could you|can you) put on [some ]{music_genre}",
    ),
    "play_radio": (
        "(play|put on|tune in to) {radio_name}",
        "i want to listen to {radio_name}",
        "switch [the radio ]to {radio_name}",
        "(play|put on) the radio [in the {house_place}]",
        "(turn on|start) the radio",
        "can you play {radio_name} [please]",
    ),
    "play_podcasts": (
        "play [the ](latest|last|next) episode of {podcast_name}",
        "(play|resume) {podcast_name}",
        "i want to listen to the {podcast_name} podcast",
        "(play|put on) the next episode",
        "(play|put on) a podcast about {news_topic}",
        "play my podcasts",
    ),
    "play_audiobook": (
        "(resume|continue) [playing ]my audiobook",
        "play the audiobook {audiobook_name}",
        "(read|play) {audiobook_name} [to me]",
        "continue (reading|playing) {audiobook_name}",
    ),
    "weather_query": (
        "what's the weather [like] (|in {place_name}) (|{date}|{timeofday})",
        "(is it going to|will it) be {weather_descriptor} (|{date}|{timeofday})",
        "do i need {weather_descriptor:item} (|{date}|{timeofday})",
        "how (hot|cold|warm) (is it|will it be) in {place_name} [{date}]",
        "what's the forecast (for|in) {place_name} [{date}]",
        "tell me the temperature [in {place_name}]",
        "is it {weather_descriptor} in {place_name} (right now|at the moment|today)",
    ),
    "alarm_set": (
        "(set|create|make) an alarm (for|at) {time} [{date}]",
        "wake me up at {time} [{date}]",
        "set an alarm for {date} at {time}",
        "i need an alarm (at|for) {time}",
        "(please|can you) wake me [up ]at {time}",
        "set my alarm (for|to) {time}",
    ),
    "alarm_remove": (
        "(cancel|delete|remove) (my|the) alarm (for|at) {time}",
        "turn off [my ]alarm [for {date}]",
        "(delete|remove|cancel) all [my ]alarms",
        "(cancel|delete) my alarm for {date}",
        "i don't need the {time} alarm (anymore|any more)",
    ),
    "alarm_query": (
        "what alarms do i have [set] [for {date}]",
        "(is there|do i have) an alarm (at|for) {time}",
        "(show|list) my alarms",
        "when is my (next|first) alarm [{date}]",
        "what time is my alarm set for",
    ),
    "calendar_set": (
        "(add|put) {event_name} (to|in|on) my calendar [{date}]",
        "schedule [a ]{event_name} [with {person}] {date} at {time}",
        "remind me (about|of) [the ]{event_name} {date}",
        "set a reminder to call {person} at {time}",
        "create a meeting with {person} {date} [at {time}]",
        "remind me to call my {relation} {date}",
        "book [a ]{event_name} for {date}",
    ),
    "calendar_query": (
        "what's on my calendar {date}",
        "what is on my (calendar|schedule) {date}",
        "do i have any (meetings|events|appointments) {date}",
        "when is [my ]{event_name}",
        "what time is [my ]{event_name} [{date}]",
        "am i free {date} at {time}",
        "(show|list) my (schedule|events) for {date}",
    ),
    "calendar_remove": (
        "(cancel|delete|remove) [my ]{event_name} [{date}]",
        "clear my calendar [for] {date}",
        "(delete|cancel) the {event_name} with {person}",
        "remove [all ]my (meetings|events|appointments) (for|on) {date}",
    ),
    "iot_hue_lightson": (
        "turn on the lights [in the {house_place}]",
        "switch on the {house_place} lights",
        "lights on [in the {house_place}]",
        "(can you|please) turn the {house_place} lights on",
        "(put|turn) the lights on [in the {house_place}]",
    ),
    "iot_hue_lightoff": (
        "turn off the lights [in the {house_place}]",
        "switch off the {house_place} lights",
        "(kill|shut off) the lights [in the {house_place}]",
        "lights off [in the {house_place}]",
        "(can you|please) turn the {house_place} lights off",
    ),
    "iot_hue_lightdim": (
        "dim the lights [in the {house_place}] [to {change_amount}]",
        "turn (down|the brightness down on) the lights [in the {house_place}]",
        "make the {house_place} (darker|less bright)",
        "lower the lights [by {change_amount}]",
        "(reduce|decrease) the brightness [in the {house_place}] [by {change_amount}]",
    ),
    "iot_hue_lightup": (
        "brighten the lights [in the {house_place}]",
        "turn up the lights [in the {house_place}] [to {change_amount}]",
        "make it brighter in the {house_place}",
        "(increase|raise) the brightness [in the {house_place}] [by {change_amount}]",
        "the {house_place} is too dark",
    ),
    "iot_cleaning": (
        "(start|turn on|run) the {device_type:cleaner} [in the {house_place}]",
        "(vacuum|clean|hoover) the {house_place} [{timeofday}]",
        "(clean|vacuum) the (floor|floors|house|carpet) [{date}]",
        "send the {device_type:cleaner} to the {house_place}",
    ),
    "iot_coffee": (
        "make me a [cup of ]{coffee_type}",
        "(start|turn on) the coffee (machine|maker)",
        "i (need|want) a coffee",
        "brew [some ]coffee [at {time}]",
        "(can you|please) make [me ]a {coffee_type} [{timeofday}]",
    ),
    "datetime_query": (
        "what time is it [in {place_name}]",
        "what's the (date|day) [{date}]",
        "what day is {date}",
        "what's the time (in|over in) {place_name}",
        "tell me the (time|date)",
        "what's the date (on|for) {date}",
    ),
    "lists_createoradd": (
        "add {food_type:grocery} to my {list_name} list",
        "put {food_type:grocery} on the {list_name} list",
        "create a [new ]list called {list_name}",
        "(make|start) a [new ]{list_name} list",
        "add {food_type:grocery} and {food_type:grocery} to the {list_name} list",
    ),
    "lists_query": (
        "what's on my {list_name} list",
        "read [me ]my {list_name} list",
        "(show|list|read) [all ]my lists",
        "is {food_type:grocery} on my {list_name} list",
        "how many (items|things) are on the {list_name} list",
    ),
    "email_sendemail": (
        "(send|write) an email to {person} [about the {event_name}]",
        "email {person} (that i'll be late|thanks for dinner|i'm on my way)",
        "send {person} an email saying (i'm running late|see you {date}|happy birthday)",
        "(email|write to) my {relation} [about {event_name}]",
        "reply to {person} (and say|saying) (yes|no thanks|sounds good)",
    ),
    "email_query": (
        "(check|read) my (emails|inbox|new emails)",
        "do i have any [new ]emails [from {person}]",
        "did {person} (email|write to) me [{date}]",
        "(any|are there any) emails from my {relation}",
        "read me the (latest|last) email from {person}",
    ),
    "news_query": (
        "what's the (latest|top) news [(about|on) {news_topic}]",
        "(tell me|give me) the {news_topic} (news|headlines)",
        "what's happening in {place_name} [{date}]",
        "read me the headlines from {media_type}",
        "(any|is there any) news about {news_topic} [{date}]",
        "what does {media_type} say about {news_topic}",
    ),
    "music_likeness": (
        "i (like|love|really like) (this song|{song_name}|{artist_name})",
        "(remember|save) that i like {music_genre} [music]",
        "{artist_name} is my favourite (artist|band|singer)",
        "my favourite song is {song_name}",
        "i'm a big fan of {artist_name}",
    ),
    "takeaway_order": (
        "order [me ]{food_type:dish} from {business_name}",
        "i (want|would like) to order {food_type:dish} [for delivery] [at {time}]",
        "can you get me {food_type:dish} from {business_name}",
        "(get|order) [us ]a takeaway from {business_name} [{timeofday}]",
        "order {food_type:dish} for {time}",
    ),
    "takeaway_query": (
        "(is|does) {business_name} (deliver|do delivery|open) [{timeofday}]",
        "(what's the status of|where is) my (order|food|takeaway)",
        "how long until my (food|order) arrives",
        "(is|does) {business_name} (still open|deliver to {place_name})",
        "what's on the menu at {business_name}",
    ),
    "transport_query": (
        "how long (does it take|will it take) to get to {place_name} [by {transport_type}]",
        "when is the next {transport_type} to {place_name}",
        "what's the traffic like (to|on the way to) {place_name}",
        "(is|are) the {transport_type} running (on time|late) [{date}]",
        "how do i get to {place_name} [by {transport_type}]",
        "what time does the {transport_type} to {place_name} leave",
    ),
    "transport_ticket": (
        "book [me ]a {transport_type} ticket to {place_name} [for {date}]",
        "(buy|get) [me ](a {transport_type} ticket|two {transport_type} tickets) to {place_name}",
        "i need a {transport_type} ticket (to|for) {place_name} {date}",
        "reserve a seat on the {transport_type} to {place_name} [at {time}]",
    ),
    "general_joke": (
        "tell me a [{joke_type} ]joke",
        "make me laugh",
        "do you know any [{joke_type} ]jokes",
        "say something funny",
        "i want to hear a [{joke_type} ]joke",
    ),
}

# --- template expansion ------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    entity: str  # the entity type written to the label
    values: str  # the key of SLOT_VALUES drawn from


@dataclass(frozen=True)
class _Choice:
    options: tuple[tuple[object, ...], ...]  # each option is a sequence of parts
    optional: bool


_TOKEN = re.compile(r"\{[a-z_:]+\}|[()\[\]|]|[^{}()\[\]|]+")


def _parse(template: str) -> tuple[object, ...]:
    """Template -> nested parts: ``str`` (literal), ``_Slot`` or ``_Choice``."""
    tokens = _TOKEN.findall(template)
    if "".join(tokens) != template:
        raise CorpusError(f"template {template!r}: unexpected characters")
    pos = 0

    def sequence(closers: str) -> tuple[list[tuple[object, ...]], str | None]:
        nonlocal pos
        options: list[tuple[object, ...]] = []
        parts: list[object] = []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok in ("(", "["):
                inner, closer = sequence(")" if tok == "(" else "]")
                if closer != (")" if tok == "(" else "]"):
                    raise CorpusError(f"template {template!r}: unbalanced {tok!r}")
                parts.append(_Choice(tuple(inner), optional=tok == "["))
            elif tok == "|":
                options.append(tuple(parts))
                parts = []
            elif tok in (")", "]"):
                if tok not in closers:
                    raise CorpusError(f"template {template!r}: unexpected {tok!r}")
                options.append(tuple(parts))
                return options, tok
            elif tok.startswith("{"):
                key = tok[1:-1]
                parts.append(_Slot(key.split(":")[0], key))
            else:
                parts.append(tok)
        options.append(tuple(parts))
        return options, None

    options, closer = sequence("")
    if closer is not None or len(options) != 1:
        raise CorpusError(f"template {template!r}: '|' outside a group or unbalanced brackets")
    return options[0]


@cache
def _parsed(template: str) -> tuple[object, ...]:
    return _parse(template)


def _expand(parts: Sequence[object], rng: random.Random, out: list[tuple[str | None, str]]):
    for part in parts:
        if isinstance(part, str):
            out.append((None, part))
        elif isinstance(part, _Slot):
            values = SLOT_VALUES.get(part.values)
            if not values:
                raise CorpusError(f"slot {{{part.values}}} has no values in SLOT_VALUES")
            out.append((part.entity, rng.choice(values)))
        elif isinstance(part, _Choice):
            if part.optional:
                if rng.random() < 0.5:
                    for option in part.options:
                        _expand(option, rng, out)
            else:
                _expand(rng.choice(part.options), rng, out)


def fill(template: str, rng: random.Random) -> tuple[str, tuple[Entity, ...]]:
    """Fill ``template`` with random choices; returns ``(text, entities)`` with exact spans.

    Literal pieces are split into words and everything is rejoined with single spaces; an
    entity's span is recorded as its value is appended, so ``text[start:end]`` is the value.
    """
    pieces: list[tuple[str | None, str]] = []
    _expand(_parsed(template), rng, pieces)
    words: list[str] = []
    entities: list[Entity] = []
    length = 0
    for etype, piece in pieces:
        chunks = [piece] if etype is not None else piece.split()
        for chunk in chunks:
            start = length + (1 if words else 0)
            words.append(chunk)
            length = start + len(chunk)
            if etype is not None:
                entities.append(Entity(etype, start, length))
    return " ".join(words), tuple(entities)


# --- sampling ----------------------------------------------------------------------------

INTENTS: tuple[str, ...] = tuple(sorted(INTENT_TEMPLATES))
ENTITY_TYPES: tuple[str, ...] = tuple(sorted({k.split(":")[0] for k in SLOT_VALUES}))


def sample(
    rng: random.Random, intents: Sequence[str] = INTENTS
) -> tuple[str, str, tuple[Entity, ...]]:
    """One utterance: ``(text, intent, entities)``; intents uniform over ``intents`` (every
    intent of the grammar by default), then templates uniform."""
    intent = rng.choice(intents)
    text, entities = fill(rng.choice(INTENT_TEMPLATES[intent]), rng)
    return text, intent, entities


def generate(n: int, seed: int, *, prefix: str = "u") -> list[tuple[str, Label]]:
    """``n`` labelled utterances ``[(id, Label), ...]``, a pure function of ``(n, seed)``.

    Ids are ``{prefix}{index:05d}``; labels are seed labels (text, intent, entities).
    """
    if n < 0:
        raise CorpusError(f"cannot generate {n} utterances")
    rng = random.Random(f"earmark-grammar-{seed}")
    out: list[tuple[str, Label]] = []
    for i in range(n):
        uid = f"{prefix}{i:05d}"
        text, intent, entities = sample(rng)
        out.append((uid, Label(uid, text, intent, entities, LabelSource.SEED)))
    return out
