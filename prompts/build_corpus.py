#!/usr/bin/env python3
"""Build the project's prompt corpus: prompts/train.jsonl, validation.jsonl and heldout.jsonl.

Deterministic (fixed seeds, standard library only).  Every line is
``{"id": "<category>-<split>-<nnnn>", "category": ..., "prompt": ...}``; prompts of the checkable categories
(arithmetic, unit_conversion, format) also carry a ``"check"`` (a list of check objects, schema in
``eval/checks.py``) and a ``"reference"``: a short correct answer that passes the check.

Splitting is done by *group* (the topic/filler a prompt was built from, e.g. the concept being explained or the
fact being asked), so a prompt never shares its topic with a prompt of the same category in another split.  On
top of that the three files are pairwise disjoint by sha256 of the normalised prompt text (strip, collapse
whitespace, lowercase), which the script asserts.  Validation exists so that checkpoints and hyper-parameters
are chosen on it, never on held-out prompts.  Each category has its own RNG, so changing one category's
generator leaves the others' prompts as they were.

The script also asserts that every reference passes its own check, that no prompt passes its own content check
when echoed back, and that no single answer text is right for more than 3% of the checkable held-out prompts
(5% of validation's, which has fewer).

Usage:  python prompts/build_corpus.py [--out DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

SEED = 20240611

# category -> (train, validation, heldout, max held-out/validation items per group)
TARGETS = {
    "explanation": (160, 12, 25, 1),
    "howto": (160, 10, 25, 1),
    "writing": (150, 12, 25, 1),
    "rewriting": (140, 10, 25, 1),
    "summarising": (125, 10, 25, 5),
    "lists": (140, 8, 25, 1),
    "comparisons": (125, 8, 25, 1),
    "reasoning": (130, 10, 25, 1),
    "arithmetic": (160, 13, 32, 1),
    "unit_conversion": (140, 13, 32, 1),
    "format": (230, 14, 46, 1),
}
CHECKABLE = ("arithmetic", "unit_conversion", "format")
SPLITS = ("train", "validation", "heldout")
# how often one answer may be the right one: share of checkable prompts (asserted), and per answer key (picking)
MAX_ANSWER_SHARE = {"heldout": 0.03, "validation": 0.05}
ANSWER_CAP = {"heldout": 2, "validation": 1}
# format prompts per sub-kind and form: (validation, heldout); yes/no is kept small so that "Yes." stays under 3%
FORMAT_QUOTAS = {
    "yes_no": (2, 6), "month": (1, 4), "bullets": (3, 10),
    "word:one_word": (1, 5), "word:max_words": (2, 5), "word:starts_with": (1, 4),
    "count:one_word": (1, 2), "count:max_words": (0, 2), "count:starts_with": (1, 2),
    "date:max_words": (1, 3), "date:starts_with": (1, 3),
}


def _load_checks():
    """eval/checks.py, loaded from its file so that this script needs neither the package nor its dependencies."""
    path = Path(__file__).resolve().parent.parent / "eval" / "checks.py"
    spec = importlib.util.spec_from_file_location("corpus_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


@dataclass(frozen=True)
class Item:
    group: str
    prompt: str
    check: list | None = None
    reference: str | None = None
    answer: str = ""  # answer key: limits how often one answer is right within a split
    bucket: str = ""  # format sub-kind, for the per-split quotas


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def cap(s: str) -> str:
    """Capitalise the first letter unless the word is like 'iOS' or 'eBay'."""
    if len(s) > 1 and s[1].isupper():
        return s
    return s[:1].upper() + s[1:]


def lc(s: str) -> str:
    return s[:1].lower() + s[1:]


def json_num(x) -> int | float:
    """A number for JSON: an int when whole."""
    f = float(x)
    return int(f) if f.is_integer() else f


def number_check(answer, tolerance: float, given, unit: list[str] | None = None) -> dict:
    """A number check; ``given`` numbers equal to the answer are dropped (they never hide it anyway)."""
    kept = []
    for g in map(json_num, given):
        if g not in kept and abs(g - float(answer)) > 1e-9 * max(1.0, abs(float(answer))):
            kept.append(g)
    check = {"kind": "number", "answer": json_num(answer), "tolerance": tolerance}
    if unit:
        check["unit"] = unit
    if kept:
        check["given"] = kept
    return check


def echo_passes(item: Item) -> bool:
    """Whether the prompt itself, sent back as the answer, passes the content part of its check."""
    content = [c for c in item.check if c["kind"] in checks.CONTENT_KINDS]
    return checks.score(content, item.prompt)


NUM_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten",
             11: "eleven"}

PERSONAS = [
    "a nurse", "a high school teacher", "a retired engineer", "a first-year college student", "a new parent",
    "a small business owner", "a software developer", "a graphic designer", "a truck driver", "a stay-at-home dad",
    "a nursing student", "a librarian", "a bartender", "a night-shift worker", "a volunteer firefighter",
    "an accountant", "a line cook", "a freelance writer", "a marathon runner", "a beginner gardener",
    "an exchange student", "a middle school science teacher", "a physical therapist", "a real estate agent",
    "a musician", "a dental hygienist", "a warehouse worker", "a grandmother of four", "a homeschooling parent",
    "a junior data analyst", "a bus driver", "a pharmacy technician", "a wedding photographer", "a retired teacher",
]

# ---------------------------------------------------------------------------
# explanation
# ---------------------------------------------------------------------------
# A trailing "+" marks a plural noun phrase.
CONCEPTS = [
    # science & nature
    "photosynthesis", "the water cycle", "gravity", "black holes+", "DNA", "the greenhouse effect",
    "plate tectonics", "natural selection", "static electricity", "the immune system", "antibiotic resistance",
    "a solar eclipse", "the phases of the moon+", "ocean tides+", "the Doppler effect", "nuclear fission",
    "a chemical reaction", "the pH scale", "osmosis", "the nitrogen cycle", "carbon dating", "the Big Bang theory",
    "magnetism", "a vaccine", "metabolism", "a leap year", "time zones+", "a food chain", "erosion", "a hurricane",
    "entropy", "the placebo effect", "circadian rhythm", "cholesterol", "blood pressure", "hibernation",
    "echolocation", "bird migration", "a light-year", "dark matter", "the ozone layer", "an ecosystem",
    "a tsunami", "humidity", "a gene mutation", "the speed of sound",
    # money
    "compound interest", "inflation", "a credit score", "a mortgage", "an index fund", "a stock split",
    "a Roth IRA", "supply and demand", "a recession", "cryptocurrency", "a 401(k)", "an emergency fund",
    "capital gains tax", "a bond", "dollar-cost averaging", "APR on a credit card", "the gig economy",
    "exchange rates+", "a health savings account", "amortization", "diversification", "an insurance deductible",
    "opportunity cost", "a balance sheet", "net worth", "a tax bracket",
    # technology
    "an API", "machine learning", "a neural network", "cloud computing", "version control", "recursion",
    "an operating system", "a VPN", "two-factor authentication", "encryption", "a database index",
    "an IP address", "DNS", "browser cookies+", "open-source software", "a compiler", "object-oriented programming",
    "a blockchain", "a CPU cache", "a firewall", "phishing", "RAM", "a large language model", "a pivot table",
    "unit testing", "a regular expression", "a hash function", "GPS", "a QR code", "a cookie banner",
    "Bluetooth", "a web server", "a software bug",
    # history & society
    "the Industrial Revolution", "the Renaissance", "the Cold War", "the printing press", "democracy",
    "the Silk Road", "the French Revolution", "the Magna Carta", "feudalism", "the electoral college",
    "a filibuster", "the United Nations", "the separation of powers", "globalization", "the Great Depression",
    "the space race", "the Marshall Plan", "the Bronze Age",
    # health, food, home
    "the glycemic index", "intermittent fasting", "REM sleep", "a food allergy", "dehydration", "a migraine",
    "the Mediterranean diet", "probiotics+", "a calorie", "the Maillard reaction", "brining", "emulsification",
    "gluten", "umami", "composting", "crop rotation", "companion planting", "soil pH", "hydroponics",
    "a sourdough starter", "a heat pump", "jet lag", "travel insurance", "a lease agreement", "a carbon footprint",
    "renewable energy", "a tax return", "a pension",
    # sport, arts, mind
    "the offside rule in soccer", "a tiebreak in tennis", "a key signature", "syncopation", "a chord progression",
    "the circle of fifths", "the rule of thirds in photography", "aperture", "a haiku", "iambic pentameter",
    "dramatic irony", "a metaphor", "cognitive dissonance", "confirmation bias", "the sunk cost fallacy",
    "impostor syndrome", "a marathon's taper period", "the infield fly rule", "a hat-trick",
]

CONCEPT_TEMPLATES = [
    "Explain {c} in simple terms.",
    "What {be} {c}?",
    "Can you explain {c} to me like I'm twelve?",
    "I keep hearing about {c}. What {be} {it}, exactly?",
    "Give me a short, beginner-friendly explanation of {c}.",
    "How would you describe {c} to someone who has never heard of {it_obj}?",
    "What's the basic idea behind {c}?",
    "Could you break down {c} for me? Keep it short.",
    "In plain English, what {be} {c}?",
    "I never really understood what {c} {be}. Can you help?",
    "Quick question: what {be} {c}, and why does it matter?",
    "Teach me the basics of {c} in a few sentences.",
    "What should a beginner know about {c}?",
    "My friend mentioned {c} and I nodded along, but I have no idea what {it} {be}. Can you explain?",
    "Explain {c} using an everyday analogy.",
    "Why {be} {c} important?",
    "I'm {persona} and I'd like a simple explanation of {c}.",
    "As {persona}, I'd love a clear, jargon-free explanation of {c}.",
    "Hey, can you tell me what {c} {be}? Nothing too technical, please.",
    "Explain {c} in two or three sentences.",
    "I'm studying for a quiz tomorrow. Can you summarize what {c} {be}?",
    "What's a good way to think about {c}?",
]

WHY_QUESTIONS = [
    "Why is the sky blue?", "Why do onions make you cry when you cut them?", "Why does bread go stale?",
    "Why do we get goosebumps?", "Why do cats knead blankets?", "Why does ice float?",
    "Why do leaves change color in autumn?", "Why do planes leave white trails in the sky?",
    "Why does my voice sound different on recordings?", "Why do we yawn?",
    "Why does metal feel colder than wood at the same temperature?", "Why is sea water salty?",
    "Why do dogs tilt their heads when you talk to them?", "Why does popcorn pop?", "Why do we have leap years?",
    "How do noise-cancelling headphones work?", "How does a microwave heat food?", "How do airplanes stay in the air?",
    "How does a refrigerator keep things cold?", "How do bees make honey?", "How do credit card companies make money?",
    "How do touchscreens know where my finger is?", "How does soap actually remove germs?", "How does a compass work?",
    "How does yeast make bread rise?", "How do solar panels turn sunlight into electricity?",
    "How does a thermostat work?", "How do chameleons change color?", "How does the heart pump blood?",
    "Why do some people need glasses?", "Why does the moon look bigger near the horizon?",
    "Why do our fingers wrinkle in water?", "Why does coffee keep me awake?", "Why do some birds fly south for the winter?",
    "Why do we dream?", "Why do stars twinkle?", "Why do some cheeses have holes?", "Why does salt melt ice on roads?",
    "Why do my ears pop on a plane?", "Why do bananas turn brown?", "Why do we have different blood types?",
    "Why do cuts itch when they heal?", "Why do cars need oil changes?", "Why do batteries drain faster in the cold?",
    "Why does a spoon look bent in a glass of water?", "How do fish breathe underwater?",
    "How do plants know which way is up?", "Why is it harder to breathe at high altitude?", "Why do we sneeze?",
    "How does a bicycle stay upright when it's moving?", "Why does my phone get hot when it's charging?",
    "Why do houseplants droop when they need water?", "How do interest rates affect house prices?",
    "Why do prices tend to go up over time?", "Why do some English words have silent letters?",
    "Why did the Western Roman Empire fall?", "How did people tell time before clocks?",
    "Why do we have time zones?", "Why do cats purr?", "How do hybrid cars save fuel?",
    "Why does the same song get stuck in my head?", "How does a dishwasher get dishes clean without scrubbing?",
    "Why do muscles get sore a day or two after a workout?", "How do birds know where to migrate?",
]
WHY_WRAPPERS = [
    "{q}", "Quick one: {q}", "{q} Keep it simple.", "My kid asked me \"{q}\" and I had no idea. Can you help?",
    "I've always wondered: {lq}", "{q} Please explain it in a couple of sentences.",
    "Can you explain something for me? {q}", "Settle a debate for us: {lq}", "{q} I'm {persona}, not a scientist, so keep it plain.",
    "Random question, but {lq}", "{q} A short answer is fine.",
]


def concept_vars(c: str) -> dict:
    plural = c.endswith("+")
    c = c.rstrip("+")
    return {"c": c, "be": "are" if plural else "is", "it": "they" if plural else "it",
            "it_obj": "them" if plural else "it"}


def gen_explanation(rng: random.Random):
    items = []
    for c in CONCEPTS:
        v = concept_vars(c)
        for t in rng.sample(CONCEPT_TEMPLATES, 2):
            items.append((v["c"], t.format(persona=rng.choice(PERSONAS), **v)))
    for q in WHY_QUESTIONS:
        for w in rng.sample(WHY_WRAPPERS, 2):
            items.append((q, w.format(q=q, lq=lc(q), persona=rng.choice(PERSONAS))))
    return items


# ---------------------------------------------------------------------------
# how-to
# ---------------------------------------------------------------------------
TASKS = [
    # cooking
    "boil an egg so the yolk is still soft", "cook rice on the stove without it getting mushy",
    "make a simple vinaigrette", "sharpen a kitchen knife", "make pancakes from scratch", "season a cast iron pan",
    "make cold brew coffee at home", "keep cut avocado from turning brown", "roast vegetables evenly",
    "make a basic tomato sauce", "bake bread without a bread machine", "poach an egg", "caramelize onions",
    "meal prep for a week on a budget", "store fresh herbs so they last longer", "cut a mango",
    "make pizza dough at home", "brew loose-leaf tea properly", "thicken a soup that's too watery",
    "fix a sauce that's too salty", "cook a steak in a pan", "make a fluffy omelette",
    # home
    "unclog a bathroom sink", "get rid of fruit flies in the kitchen", "get a red wine stain out of a carpet",
    "hang a picture frame straight", "fix a squeaky door hinge", "patch a small hole in drywall",
    "clean a microwave quickly", "descale a kettle", "organize a small closet",
    "reduce condensation on windows in winter", "paint a room without making a mess", "reset a tripped circuit breaker",
    "keep a bathroom from getting moldy", "wash a down jacket", "iron a dress shirt", "fold a fitted sheet",
    "remove sticky labels from glass jars", "defrost a freezer", "get rid of a musty smell in a closet",
    # tech
    "back up my phone", "set up two-factor authentication on my email", "speed up an old laptop",
    "take a screenshot on Windows", "create a strong password I can actually remember", "write a for loop in Python",
    "undo the last commit in Git", "make a simple budget spreadsheet", "free up storage on my phone",
    "reverse a string in JavaScript", "find duplicate rows in Excel", "learn to touch type",
    "read a CSV file in Python", "make my home Wi-Fi faster", "spot a phishing email", "start learning SQL",
    "clear my browser cache", "set up a printer on my home network",
    # money
    "start an emergency fund", "pay off credit card debt faster", "build a monthly budget",
    "negotiate a higher salary", "save for a vacation", "check my credit report", "split rent fairly with roommates",
    "cut my grocery bill", "start investing with a small amount of money", "track my spending",
    "ask a store for a refund politely", "prepare for tax season",
    # health & fitness
    "start running as a complete beginner", "improve my posture at a desk", "fall asleep faster",
    "drink more water during the day", "stretch after a workout", "do a proper push-up", "build a morning routine",
    "cut down on screen time before bed", "stay motivated to exercise in winter", "start meditating",
    "drink less coffee without getting headaches", "pack a healthy lunch for work",
    # garden
    "grow tomatoes on a balcony", "repot a houseplant", "start a compost pile", "keep basil alive indoors",
    "get rid of aphids naturally", "plant tulip bulbs", "propagate a pothos from cuttings", "water succulents correctly",
    "prune a rose bush", "grow herbs on a windowsill", "tell if a plant needs more light", "start seeds indoors",
    # pets
    "introduce a new cat to my dog", "trim my dog's nails", "house-train a puppy",
    "get my cat to stop scratching the couch", "set up a freshwater fish tank", "teach a dog to sit",
    "keep my rabbit cool in summer", "help a nervous rescue dog settle in", "brush a cat's teeth",
    "choose food for an older dog", "get my dog used to a crate",
    # travel
    "pack light for a week-long trip", "get over jet lag quickly", "find cheap flights", "plan a road trip",
    "avoid pickpockets in a busy city", "get around a new city using public transport",
    "pack a carry-on for a business trip", "prepare for a long-haul flight",
    "exchange money abroad without paying high fees", "plan a weekend camping trip",
    # work, study, life
    "write a strong resume", "prepare for a job interview", "take better notes in class",
    "study for an exam in one week", "give a short presentation without getting nervous",
    "write a professional email to my boss", "say no to extra work politely",
    "make small talk at a networking event", "remember people's names", "learn a new language on my own",
    "manage my time while working from home", "run an effective team meeting",
    "give constructive feedback to a coworker", "apologize to a friend after an argument",
    "plan a surprise birthday party", "start a book club", "learn to juggle", "tune a guitar",
    "practice piano every day", "improve my handwriting", "change a flat tire", "jump-start a car",
    "check the tire pressure on my car", "parallel park", "ride a bike safely in city traffic", "tie a tie",
    "sew a button back on", "fold a paper airplane that flies far", "take better photos with my phone",
    "start journaling", "get better at public speaking", "write a short speech for a wedding",
]
RELATIVES = [("roommate", "them"), ("sister", "her"), ("dad", "him"), ("neighbor", "them"), ("coworker", "them"),
             ("teenage son", "him"), ("grandpa", "him"), ("best friend", "them"), ("mom", "her")]
HOWTO_TEMPLATES = [
    "How do I {t}?",
    "What's the best way to {t}?",
    "Can you walk me through how to {t}?",
    "Give me step-by-step instructions to {t}.",
    "I've never tried to {t} before. Where do I start?",
    "Any tips on how to {t}?",
    "What's the easiest way to {t}?",
    "How can I {t}? Keep it short, please.",
    "I'm {persona} and I need to {t}. How should I go about it?",
    "Explain how to {t} in a few simple steps.",
    "Hey, what's a quick way to {t}?",
    "I want to {t} this weekend. What steps should I follow?",
    "Is there a simple method to {t}?",
    "What are the steps to {t}?",
    "Could you give me a beginner's guide on how to {t}?",
    "What mistakes should I avoid when I try to {t}?",
    "I'd like to {t}, but I don't know where to begin. Any advice?",
    "What's the right way to {t}?",
    "Can you give me a short checklist for how to {t}?",
]
HOWTO_TEMPLATES_NO_MY = [
    "My {rel} asked me how to {t} and I wasn't sure. What should I tell {pron}?",
    "How do people usually {t}?",
    "Okay, total beginner here. How do you {t}?",
]


def gen_howto(rng: random.Random):
    items = []
    for t in TASKS:
        pool = HOWTO_TEMPLATES + ([] if re.search(r"\bmy\b|\bI\b", t) else HOWTO_TEMPLATES_NO_MY)
        for tpl in rng.sample(pool, 2):
            rel, pron = rng.choice(RELATIVES)
            items.append((t, tpl.format(t=t, persona=rng.choice(PERSONAS), rel=rel, pron=pron)))
    return items


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------
POEM_TOPICS = [
    "the first snow of winter", "a rainy Monday morning", "my grandmother's kitchen", "the ocean at night",
    "a cat sleeping in the sun", "city lights after midnight", "a long train ride", "autumn leaves",
    "moving to a new city", "a cup of morning coffee", "an old friendship", "the last day of summer",
    "a lighthouse", "a garden in spring", "a lost umbrella", "the full moon", "an old bicycle", "homesickness",
    "a summer thunderstorm", "learning to cook", "a quiet library", "a dog waiting at the door",
    "the smell of fresh bread", "sunrise over the mountains", "a busy farmers market", "the first day of school",
]
LIMERICK_SUBJECTS = [
    "a cat who hates Mondays", "a goat who wanted to fly", "a penguin who moved to the desert",
    "a dog who learned to cook", "a snail in a hurry", "a parrot who only speaks in questions",
    "a hamster who runs a bakery", "a giraffe who is afraid of heights", "a cow who plays the trumpet",
    "an owl who can't stay awake at night", "a fish who wants to climb trees", "a bear who loves spreadsheets",
]
LANDLORD_ISSUES = [
    "a leaking kitchen faucet", "a broken heater", "mold in the bathroom", "noisy neighbors upstairs",
    "renewing my lease", "paying rent a few days late this month", "a broken dishwasher", "getting a pet",
]
THANKS = [
    ("my neighbor", "watering my plants while I was away"), ("my coworker", "covering my shift last week"),
    ("my aunt", "the birthday gift"), ("my son's teacher", "a great school year"), ("a friend", "helping me move"),
    ("my mentor", "all the advice over the past year"), ("our hosts", "a lovely dinner party"),
    ("my team", "finishing a tough project on time"), ("the nurses at the clinic", "taking such good care of my mom"),
]
BIRTHDAYS = [
    "my best friend", "my dad, who is turning 60", "a coworker I don't know very well", "my little sister",
    "my grandmother, who is turning 90", "my boss", "my partner", "my nephew, who is turning 8",
]
PRODUCTS = [
    "a reusable water bottle", "handmade soy candles", "a wireless phone charger", "a bamboo cutting board",
    "noise-cancelling headphones", "a beginner's watercolor set", "organic dog treats", "a foldable travel backpack",
    "a smart plant sensor", "a weighted blanket", "a cast iron skillet", "a kids' rain jacket", "a standing desk",
    "a hand-knitted wool scarf",
]
BUSINESSES = [
    "a small bakery", "a dog-walking service", "a bike repair shop", "a local bookstore", "a vegan food truck",
    "a math tutoring business", "a house cleaning company", "a yoga studio", "a coffee shop near a university",
    "a plant nursery", "a family-run pizza place", "a mobile car wash",
]
STORY_SCENARIOS = [
    "a lighthouse keeper who finds a message in a bottle", "a kid who discovers their neighbor is a retired astronaut",
    "a chef who loses their sense of taste", "a town where it never stops raining", "two strangers stuck in an elevator",
    "a robot learning to garden", "a detective who is afraid of the dark", "a time traveler stuck in the 1990s",
    "a dragon who runs a small cafe", "a girl who can talk to birds", "a librarian who finds a book that writes itself",
    "the last bus of the night", "a mail carrier on a tiny island", "a family road trip that goes wrong",
]
SPEECH_OCCASIONS = [
    "my sister's wedding", "a coworker's retirement party", "my parents' 30th anniversary",
    "a high school graduation", "the opening of a community garden", "my best friend's 40th birthday",
    "the end of our soccer team's season",
]
BIOS = [
    "my LinkedIn profile (I'm a junior accountant)", "a freelance photographer's website",
    "a local band's concert flyer", "a yoga teacher's Instagram page",
    "a conference speaker who works in renewable energy", "a volunteer page at an animal shelter",
]
ANNOUNCEMENTS = [
    "our bakery's new opening hours", "a neighborhood cleanup this Saturday", "my new podcast about gardening",
    "a charity bake sale", "our dog adoption event", "the launch of my online shop", "a free coding workshop for teens",
    "a book swap at the local library",
]
POLITE_MESSAGES = [
    ("my neighbor", "their dog barking at night"), ("a coworker", "a missed deadline that affects my work"),
    ("a client", "a delayed delivery"), ("my roommate", "sharing the cleaning"),
    ("a friend", "the money they still owe me"), ("my daughter's soccer coach", "an upcoming absence"),
    ("a contractor", "work that wasn't finished on time"),
]
JOBS = [
    "barista", "junior web developer", "nurse", "marketing assistant", "library assistant", "warehouse supervisor",
    "teaching assistant", "customer service representative", "data analyst", "graphic designer",
]
REVIEWS = [
    "a cozy Italian restaurant", "running shoes I've worn for six months", "a mystery novel I couldn't put down",
    "a budget hotel by the airport", "a weekend cooking class", "a new coffee maker",
]
RIDDLE_ANSWERS = ["a shadow", "an echo", "a candle", "time", "a map", "a key", "a towel", "a clock"]
MOTIVATION = [
    "a friend starting a new job", "my team before a big deadline", "a student studying for finals",
    "someone running their first marathon", "my brother, who just started learning to code",
]
JOKE_TOPICS = ["programmers", "cats", "coffee", "Mondays", "gardening", "math class", "camping", "dentists"]

CASUAL = [" Make it funny.", " Keep it light and playful.", ""]
WARM = [" Keep the tone warm.", " Keep it short and sincere.", " Nothing too cheesy, please.", ""]
PRO = [" Keep it polite but firm.", " Make it sound professional.", " Keep it brief.", ""]
ADS = [" Keep it under 80 words.", " Make it catchy.", " Aim it at busy parents.", ""]
PIECE_TYPES = [
    (POEM_TOPICS, "a short poem about {x}", [" Make it rhyme.", " No rhyming, please.", " Keep it to two stanzas.", ""]),
    (POEM_TOPICS, "a haiku about {x}", [""]),
    (LIMERICK_SUBJECTS, "a limerick about {x}", [""]),
    (LANDLORD_ISSUES, "an email to my landlord about {x}", PRO),
    (THANKS, "a thank-you note to {x0} for {x1}", WARM),
    (BIRTHDAYS, "a short birthday message for {x}", WARM + CASUAL),
    (PRODUCTS, "a product description for {x}", ADS),
    (BUSINESSES, "a slogan for {x}", [" Give me a few options.", ""]),
    (STORY_SCENARIOS, "the opening paragraph of a story about {x}", [" Make it a little spooky.", " Make it cozy.", ""]),
    (SPEECH_OCCASIONS, "a short toast for {x}", WARM + CASUAL),
    (BIOS, "a short bio for {x}", [" Write it in the third person.", " Keep it to three sentences.", ""]),
    (ANNOUNCEMENTS, "a social media post announcing {x}", [" Add a couple of emojis.", " Keep it upbeat.", ""]),
    (POLITE_MESSAGES, "a polite message to {x0} about {x1}", PRO + WARM[:1]),
    (JOBS, "the opening paragraph of a cover letter for a {x} position", [" I'm switching careers.", " I'm a recent graduate.", ""]),
    (REVIEWS, "a short review of {x}", [" Make it mostly positive.", " Be honest about the downsides too.", ""]),
    (RIDDLE_ANSWERS, "a riddle whose answer is {x}", [" Make it tricky.", ""]),
    (MOTIVATION, "a short motivational message for {x}", WARM),
    (JOKE_TOPICS, "a two-line joke about {x}", [""]),
]
WRITING_TEMPLATES = [
    "Write {p}.", "Could you write {p}?", "Please write {p}.", "Can you help me draft {p}?", "I need {p}. Can you help?",
    "Help me write {p}.", "Write me {p}, please.", "Compose {p}.", "Put together {p}.", "Hey, can you whip up {p}?",
    "Quick favor: write {p}.", "I'm stuck. Could you write {p}?", "Would you mind writing {p}?",
    "Draft {p}.", "Can you come up with {p}?",
]


def gen_writing(rng: random.Random):
    items = []
    for fillers, piece, extras in PIECE_TYPES:
        for x in fillers:
            if isinstance(x, tuple):
                p = piece.format(x0=x[0], x1=x[1])
            else:
                p = piece.format(x=x)
            for tpl in rng.sample(WRITING_TEMPLATES, 2):
                items.append((p, tpl.format(p=p) + rng.choice(extras)))
    return items


# ---------------------------------------------------------------------------
# rewriting
# ---------------------------------------------------------------------------
INFORMAL = [
    "hey, can you send me that report by tomorrow?", "we gotta push the meeting, something came up.",
    "the food was super good but the service was kind of slow.", "I'm gonna be late, traffic is crazy.",
    "thanks a ton for helping out with the move!", "that new policy is a total mess, nobody gets it.",
    "can't make it tonight, sorry, maybe next week?", "the printer's broken again, can someone fix it?",
    "just checking if you saw my last email.", "your app keeps crashing and it's driving me nuts.",
    "we crushed our sales goal this month!", "I need Friday off for a family thing.",
    "the hotel room was tiny and smelled weird.", "no worries if you can't, just let me know.",
    "got your package, looks great, thanks!", "let me know when you're free to chat.",
    "the project is way behind and we need more people.", "sorry for the slow reply, it's been a crazy week.",
    "your invoice is wrong, you charged us twice.", "can we move our call to like 3ish?",
    "the new guy is awesome, he already fixed half our bugs.", "heads up, the office is closed Monday.",
]
FORMAL = [
    "Due to unforeseen circumstances, the event has been postponed until further notice.",
    "The municipality will implement a revised waste collection schedule commencing next month.",
    "Photosynthesis is the process by which green plants convert light energy into chemical energy stored in glucose.",
    "Participants are required to submit documentation verifying their eligibility prior to enrollment.",
    "The medication should be administered twice daily, preferably following a meal.",
    "In light of recent feedback, we have elected to discontinue the product line.",
    "Individuals experiencing persistent symptoms are advised to consult a healthcare professional.",
    "The committee has reached a consensus regarding the allocation of the annual budget.",
    "Excessive consumption of sugary beverages is associated with an increased risk of dental decay.",
    "The library will be closed for renovations for the duration of the summer period.",
    "Our analysis indicates that customer satisfaction has declined considerably over the past quarter.",
    "It is imperative that all employees complete the mandatory safety training by Friday.",
    "Precipitation is anticipated throughout the afternoon, with temperatures declining in the evening.",
    "The tenant is responsible for maintaining the property in a clean and sanitary condition.",
    "Regular physical activity contributes significantly to cardiovascular health and overall well-being.",
    "Applicants who fail to provide the requested information may experience delays in processing.",
]
ERRORS = [
    "Me and him goes to the store every Saturday.", "Their going to the park later, do you want to come?",
    "She don't like coffee in the morning.", "The list of items are on the table.",
    "I could of finished it yesterday if I had more time.", "Him and his brother was late again.",
    "Who's book is this?", "I seen that movie three times already.", "The dog wagged it's tail when we came home.",
    "Less people came to the party than we expected.", "Between you and I, the plan won't work.",
    "We was planning to leave early but the car broke down.", "Your the best friend anyone could ask for.",
    "There is three reasons I want this job.", "Each of the students have a laptop.",
    "She has went to that restaurant before.", "The data show that sales has grown a lot.",
    "Me and my sister is visiting grandma next week.", "He runs more faster than anyone on the team.",
    "I didn't see nobody at the office today.", "Can you borrow me your pen for a minute?",
    "The team have did a great job this year.", "Whose going to drive us to the airport?",
    "I wish I would have studied more for the test.", "Neither of my brothers are coming to dinner.",
]
WORDY = [
    "At this point in time, we are currently in the process of reviewing all of the applications that we have received.",
    "In my personal opinion, I think that the meeting could have been a lot shorter than it actually was.",
    "Due to the fact that it was raining outside, we made the decision to stay inside the house.",
    "It is absolutely essential and necessary that each and every person arrives on time.",
    "The reason why I am writing to you today is because I wanted to ask you a question about your services.",
    "We would like to take this opportunity to thank you for the purchase that you recently made.",
    "In the event that you have any questions at all, please do not hesitate to contact us at any time.",
    "She is a person who really enjoys spending her free time reading books of all different kinds.",
    "I just wanted to quickly reach out and touch base with you regarding the current status of the project.",
    "The new software that we installed last week is a program that helps us keep track of our inventory.",
    "For the purpose of saving money, we have decided that we will not be ordering any new supplies this month.",
    "It has come to my attention that there may possibly be an error in the report that was sent out yesterday.",
]
# (sentence, passive-able, present tense)
PLAIN = [
    ("The store opens at nine on weekdays.", False, True),
    ("Our team finished the project two days early.", True, False),
    ("The new park has a playground and a small pond.", False, True),
    ("The train to the airport leaves every twenty minutes.", False, True),
    ("We are raising money for the animal shelter.", True, True),
    ("The workshop covers basic photography skills.", True, True),
    ("The cafe now offers oat milk.", True, True),
    ("The chef prepared a three-course meal for the guests.", True, False),
    ("The city council approved the new bike lanes.", True, False),
    ("Students must return their library books by Friday.", True, True),
    ("The committee reviewed the proposal on Tuesday.", True, False),
    ("The company will release the update next month.", True, False),
    ("My neighbor repaired the fence last weekend.", True, False),
    ("The museum is free on the first Sunday of each month.", False, True),
    ("Our gym has a pool and a sauna.", False, True),
    ("The kids painted a mural on the school wall.", True, False),
]
REW_INFORMAL = [
    "Rewrite this to sound more professional: \"{s}\"", "Make this message more formal:\n\n{s}",
    "How would I say this politely in a work email? \"{s}\"", "Can you clean this up so I can send it to my manager?\n\n\"{s}\"",
    "Rephrase this so it sounds polished but still friendly: \"{s}\"",
]
REW_FORMAL = [
    "Rewrite this in plain, simple English: \"{s}\"", "Simplify this sentence so a ten-year-old could understand it:\n\n{s}",
    "Can you make this sound less stiff? \"{s}\"", "Rephrase this in a casual, friendly tone: \"{s}\"",
    "Say this more simply: \"{s}\"", "This sounds like a legal document. Can you rewrite it in everyday language?\n\n\"{s}\"",
]
REW_ERRORS = [
    "Fix the grammar in this sentence: \"{s}\"", "Can you correct any mistakes here? \"{s}\"", "Proofread this for me:\n\n{s}",
    "Is this sentence grammatically correct? If not, fix it: \"{s}\"",
    "My teacher marked this sentence as wrong. What's the correct version? \"{s}\"",
    "Correct this sentence and briefly say what was wrong: \"{s}\"",
]
REW_WORDY = [
    "Make this sentence shorter without losing the meaning: \"{s}\"", "Cut the fluff from this sentence:\n\n{s}",
    "Rewrite this more concisely: \"{s}\"", "Tighten up this sentence for a business email: \"{s}\"",
    "This feels wordy. Can you trim it? \"{s}\"",
]
REW_PLAIN = [
    "Rewrite this sentence to sound more exciting: \"{s}\"", "Make this sound more persuasive, like an ad: \"{s}\"",
    "Turn this statement into a question: \"{s}\"", "Give me three different ways to say this: \"{s}\"",
    "Rephrase this so it sounds friendlier: \"{s}\"", "Paraphrase this sentence: \"{s}\"",
    "Rewrite this for a poster, in a fun tone:\n\n{s}",
]
REW_PASSIVE = ["Rewrite this sentence in the passive voice: \"{s}\"", "Change this to passive voice: \"{s}\""]
REW_PAST = ["Rewrite this in the past tense: \"{s}\""]


def gen_rewriting(rng: random.Random):
    items = []
    groups = [(INFORMAL, REW_INFORMAL, 3), (FORMAL, REW_FORMAL, 3), (ERRORS, REW_ERRORS, 3), (WORDY, REW_WORDY, 3)]
    for sentences, templates, k in groups:
        for s in sentences:
            for tpl in rng.sample(templates, k):
                items.append((s, tpl.format(s=s)))
    for s, passive, present in PLAIN:
        pool = REW_PLAIN + (REW_PASSIVE if passive else []) + (REW_PAST if present else [])
        for tpl in rng.sample(pool, 3):
            items.append((s, tpl.format(s=s)))
    return items


# ---------------------------------------------------------------------------
# summarising (paragraphs written for this corpus)
# ---------------------------------------------------------------------------
# (source description, paragraph)
PARAGRAPHS = [
    ("an article I'm reading", "Honeybees communicate the location of food through a movement called the waggle dance. A forager returning to the hive walks in a figure-eight pattern, shaking its body during the straight middle part. The angle of that straight run relative to vertical tells the other bees the direction of the flowers relative to the sun, and the length of the waggle tells them roughly how far away the flowers are. Other bees follow the dancer closely, then fly out to find the source themselves."),
    ("a work email", "Hi all, starting next Monday the office will switch to a new visitor policy. All guests must be registered in the front-desk system at least one day before their visit, and they will receive a temporary badge at reception. Guests must be accompanied by an employee at all times. Deliveries are not affected. If you have regular visitors, such as contractors, please contact facilities so we can set up a longer-term pass."),
    ("my textbook", "The Industrial Revolution began in Britain in the late eighteenth century. New machines, powered first by water and later by steam, allowed goods such as cloth to be produced far faster than by hand. Factories drew workers from the countryside into growing cities, where living conditions were often crowded and unhealthy. Over time, the changes spread to Europe and North America, raising overall wealth but also creating new social problems and sparking movements for workers' rights."),
    ("a blog post", "Sourdough bread uses a starter, a mix of flour and water that has been colonized by wild yeast and bacteria, instead of commercial yeast. The bacteria produce acids that give the bread its tangy flavor, while the yeast produces gas that makes the dough rise. Because the process is slower, sourdough usually needs many hours to ferment. Many bakers say the long fermentation improves both flavor and texture, and some people find sourdough easier to digest than regular bread."),
    ("a news site", "The city council voted on Tuesday to add twelve kilometers of protected bike lanes over the next two years. Supporters argued the lanes will reduce accidents and encourage more people to cycle to work. Some local business owners raised concerns about losing street parking in front of their shops. The council said it will study parking demand in each neighborhood before construction begins and will hold public meetings to collect feedback."),
    ("a health leaflet", "Adults generally need between seven and nine hours of sleep a night. Getting too little sleep over a long period has been linked to weaker immunity, weight gain, and trouble concentrating. To sleep better, experts suggest going to bed and waking up at the same time each day, keeping the bedroom cool and dark, and avoiding caffeine in the late afternoon. Screens can also make it harder to fall asleep, so putting the phone away an hour before bed may help."),
    ("a personal finance site", "An emergency fund is money set aside for unexpected costs, such as a car repair, a medical bill, or a sudden job loss. Many advisers recommend saving enough to cover three to six months of essential expenses. The money should be easy to access, so a regular savings account is usually a better home for it than investments that can drop in value. Building the fund slowly, with small automatic transfers each payday, is often easier than trying to save a large amount at once."),
    ("a gardening magazine", "Tomatoes grow best in a spot that gets at least six to eight hours of direct sunlight a day. They need consistent watering, because letting the soil dry out completely and then soaking it can cause the fruit to crack. A layer of mulch helps keep moisture in the soil. Most varieties also need support, such as a cage or stake, to keep the heavy stems off the ground, which reduces the risk of disease."),
    ("a museum sign", "This clay tablet was made about four thousand years ago in ancient Mesopotamia. The marks on its surface are cuneiform, one of the earliest known writing systems, pressed into wet clay with the end of a cut reed. Tablets like this one were mostly used to keep records, such as lists of grain, livestock, and payments to workers. Only later did people begin using cuneiform to write down laws, letters, and stories."),
    ("a message from my kid's school", "Dear families, our annual science fair will take place on March 14 in the school gym. Students in grades three to six may enter individually or in pairs. Project proposals are due to homeroom teachers by February 20, and all projects must include a poster explaining the question, the method, and the results. Parents are welcome to attend the open viewing from 5 to 7 p.m. Please contact Ms. Rivera if you can volunteer as a judge."),
    ("a tech article", "Two-factor authentication adds a second step when you log in to an account. After entering your password, you also confirm your identity with something else, such as a code from an app on your phone or a physical security key. This means that even if someone steals your password, they usually cannot get into the account without that second factor. Security experts recommend turning it on for email and banking first, since those accounts can be used to reset other passwords."),
    ("a travel guide", "The old town is best explored on foot, since most of its narrow streets are closed to cars. Start at the main square early in the morning, before tour groups arrive, and then follow the river path toward the cathedral. Many small restaurants close between three and six in the afternoon, so plan lunch accordingly. Public buses run every fifteen minutes from the station to the old town, and a day ticket costs less than two single fares."),
    ("a pet care guide", "Cats are often thought of as low-maintenance pets, but they still need regular care. An indoor cat needs daily play to stay active and avoid boredom, ideally with toys that let it chase and pounce. Litter boxes should be scooped every day and fully cleaned every week or two. Cats also need yearly checkups with a vet, even if they seem healthy, because they are good at hiding signs of illness until a problem becomes serious."),
    ("an article about the ocean", "Coral reefs cover a tiny fraction of the ocean floor, yet they support around a quarter of all known marine species. Corals are animals that live in partnership with tiny algae, which provide them with food and their bright colors. When the water becomes too warm, corals push the algae out and turn white, a process called bleaching. If temperatures return to normal quickly, the corals can recover, but repeated or long heat waves can kill large parts of a reef."),
    ("a team update", "Quick update on the website redesign: the new homepage and product pages are finished and have passed testing. The checkout page is taking longer than planned because the payment provider changed its requirements last week. We now expect to launch on the 28th instead of the 21st. In the meantime, the design team will use the extra time to improve the mobile layout. Please send any last feedback on the product pages by Friday."),
    ("a cooking website", "Resting meat after cooking is a simple step that many home cooks skip. When a steak or roast comes off the heat, the juices inside are still moving, and cutting it right away lets them spill onto the board. Waiting five to ten minutes for a steak, or longer for a large roast, gives the juices time to settle, so the meat stays moist. Covering it loosely with foil keeps it warm without making the crust soggy."),
    ("a history podcast transcript", "The Silk Road was not one single road but a network of trade routes linking China with Central Asia, the Middle East, and Europe. Merchants rarely traveled the whole distance; instead, goods passed from trader to trader along the way. Silk, spices, paper, and precious metals moved across these routes, but so did ideas, religions, and technologies. The routes also spread diseases, including the plague, which reached Europe in the fourteenth century."),
    ("a running club newsletter", "Many new runners get injured because they increase their distance too quickly. A common guideline is to raise your weekly mileage by no more than about ten percent at a time. It also helps to run most of your miles at an easy, conversational pace, saving hard efforts for one or two sessions a week. Rest days are part of training, not a break from it, because that is when muscles and tendons repair and grow stronger."),
    ("a science magazine", "Octopuses are remarkably intelligent for animals without a backbone. They can solve puzzles, open jars, and escape from tanks, and some have been seen carrying coconut shells to use as shelter. Much of an octopus's nervous system is located in its arms rather than its brain, which lets each arm respond to touch and taste on its own. Despite these abilities, most octopuses live only one or two years."),
    ("an email from my landlord", "Hello tenants, the building's water will be shut off on Thursday from 9 a.m. to about 1 p.m. while plumbers replace a section of the main pipe. Please fill a few containers with water in advance if you will need it during that time. After the water is turned back on, it may look cloudy for a few minutes; just let the tap run until it is clear. We apologize for the inconvenience and thank you for your patience."),
    ("an article about work habits", "Research on productivity suggests that multitasking is usually less efficient than it feels. When people switch between tasks, their brains need time to refocus, and small errors become more likely. Checking email every few minutes, for example, can break concentration on a report many times an hour. Some workers find it helps to set aside blocks of time for focused work and to check messages only at planned intervals."),
    ("a nature guide", "Monarch butterflies make one of the longest migrations of any insect. Each autumn, millions of monarchs in eastern North America fly up to four thousand kilometers to forests in central Mexico, where they spend the winter clustered on fir trees. Remarkably, no single butterfly makes the full round trip. The journey north in spring takes several generations, so the monarchs that return to Mexico the next autumn are the great-great-grandchildren of those that left."),
    ("a product manual", "Before using the blender for the first time, wash the jar, lid, and blade assembly in warm soapy water and dry them thoroughly. Always place the jar firmly on the base before plugging in the machine. Do not fill the jar above the maximum line, especially with hot liquids, as pressure can build up and push the lid off. To clean the blender quickly after use, blend warm water with a drop of dish soap for thirty seconds, then rinse."),
    ("an opinion column", "Libraries are often described as places for books, but they have quietly become much more than that. Many now offer free internet access, help with job applications, language classes, and spaces where students can study after school. For people who cannot afford a computer or a quiet place at home, the local library may be the only option. Cutting library budgets, the author argues, hurts exactly the people who depend on these services most."),
    ("my biology notes", "Vaccines work by training the immune system to recognize a germ without causing the disease. Most vaccines contain a weakened or inactivated form of a virus or bacterium, or just a piece of it, such as a protein from its surface. The immune system responds by making antibodies and memory cells. If the person is later exposed to the real germ, their body can recognize it quickly and fight it off before it causes serious illness."),
    ("a parenting blog", "Toddlers often resist bedtime, but a consistent routine can make evenings calmer. Many parents find that the same sequence each night, such as a bath, pajamas, brushing teeth, and two short books, helps children know what comes next. Keeping the routine to about thirty minutes and starting it at the same time every day makes it easier to follow. Screens are best turned off at least an hour before bed, since bright light can make it harder for children to fall asleep."),
    ("an article about money habits", "Small, regular purchases can add up more than people expect. Buying a five-dollar coffee every workday, for example, costs over a thousand dollars a year. This doesn't mean people should never treat themselves, but it helps to know where the money goes. One simple method is to track every purchase for a month, then decide which expenses are truly worth it and which could be cut or replaced with cheaper options."),
    ("a geography textbook", "Deserts are defined by how little rain they receive, not by how hot they are. Most deserts get less than 250 millimeters of precipitation a year. While many deserts, like the Sahara, are extremely hot during the day, others are cold. Antarctica is technically the largest desert in the world, because almost no new snow or rain falls there. Desert plants and animals have adapted to survive long periods without water."),
    ("a notice at my gym", "Starting next month, the gym will open an hour earlier on weekdays, at 5 a.m., to give members more time to train before work. The pool schedule will stay the same. Group classes will now require booking through the app at least two hours in advance, because several popular classes have been overcrowded. Members who book a class and do not show up three times in a month will not be able to book classes for one week."),
    ("a music history book", "The piano was invented in Italy around the year 1700 by Bartolomeo Cristofori. Earlier keyboard instruments, like the harpsichord, plucked their strings, which meant the player could not control how loudly each note sounded. Cristofori's design used hammers to strike the strings, so pressing a key harder produced a louder sound. This ability to play both soft and loud gave the instrument its original name, the pianoforte."),
    ("an article about recycling", "Recycling only works well when materials are clean and sorted correctly. A greasy pizza box or a bottle still half full of liquid can contaminate a whole batch of paper or plastic, which may then be sent to a landfill instead. Rules also vary from town to town, since not every facility can process the same materials. Checking the local guidelines and rinsing containers before putting them in the bin are two easy ways to make recycling more effective."),
    ("a customer support article", "If your order has not arrived within ten business days, first check the tracking link in your confirmation email, as packages are sometimes delayed at local depots. If the tracking has not updated for more than five days, contact our support team with your order number. We will either send a replacement or issue a full refund, whichever you prefer. Please note that orders shipped to remote areas may take up to three extra days."),
    ("a wildlife article", "Wolves live and hunt in family groups called packs, usually made up of a breeding pair and their offspring from the past few years. Working together allows them to bring down animals much larger than a single wolf could, such as elk or moose. Packs defend territories that can cover hundreds of square kilometers, marking the boundaries with scent and howling to warn other packs to stay away."),
    ("an article about language learning", "Adults often believe they are too old to learn a new language, but research suggests they can make fast progress, especially at the start. Adults are good at understanding grammar rules and can use their knowledge of their first language to guess meanings. Children tend to have the advantage in pronunciation over the long term. For most learners, regular practice matters more than age: fifteen minutes a day is usually more effective than two hours once a week."),
]
SUMMARY_TEMPLATES = [
    "Summarize this in one sentence:\n\n{p}",
    "Can you give me a two-sentence summary of the following?\n\n{p}",
    "TL;DR please:\n\n{p}",
    "What's the main point of this paragraph?\n\n{p}",
    "Summarise the following for a busy reader:\n\n{p}",
    "Read this and sum it up briefly:\n\n{p}",
    "{p}\n\nCan you summarize that in a sentence or two?",
    "Here's a paragraph from {src}. Give me the short version.\n\n{p}",
    "Boil this down to the key takeaway:\n\n{p}",
    "I don't have time to read all of this. What does it say?\n\n\"{p}\"",
    "Summarize the paragraph below in plain language.\n\n{p}",
    "Give me a quick summary of this text: {p}",
    "Pull out the key facts from this paragraph and summarize them briefly:\n\n{p}",
    "This is from {src}. What's the gist?\n\n{p}",
    "Please write a short summary of the following passage.\n\n{p}",
    "{p}\n\nSummarise the above in under three sentences.",
]


def gen_summarising(rng: random.Random):
    items = []
    for i, (src, p) in enumerate(PARAGRAPHS):
        for tpl in rng.sample(SUMMARY_TEMPLATES, 5):
            items.append((f"paragraph-{i}", tpl.format(p=p, src=src)))
    return items


# ---------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------
LIST_SUBJECTS = [
    "healthy snacks to bring to work", "ways to save money on groceries", "indoor plants that are hard to kill",
    "board games for a family night", "things to pack for a beach day", "fun things to do on a rainy day",
    "easy dinners I can make in 20 minutes", "science fiction books for beginners",
    "questions to ask at the end of a job interview", "ways to reduce stress at work", "cheap date ideas",
    "hobbies I can do at home", "gift ideas for a coworker under $20", "breakfast ideas without eggs",
    "things to check before a long road trip", "ways to make a small apartment feel bigger",
    "names for a golden retriever puppy", "icebreaker questions for a team meeting",
    "vegetables that grow well in containers", "exercises I can do without equipment",
    "ways to be more productive in the morning", "classic movies everyone should see",
    "things to do during a long layover", "kitchen tools every beginner cook needs", "ways to reuse glass jars",
    "common mistakes new managers make", "programming languages worth learning for data work",
    "signs that a dog is stressed", "birthday party themes for a seven-year-old",
    "questions to ask a landlord before signing a lease", "ways to stay warm without turning up the heat",
    "reasons to learn a second language", "skills that look good on a resume", "ideas for a podcast about cooking",
    "spices to keep in a basic pantry", "items for a home first-aid kit", "habits that help with better sleep",
    "low-maintenance pets for a small apartment", "fruits that are high in fiber",
    "topics for a short school presentation about space", "ways to make new friends as an adult",
    "budget-friendly vacation ideas", "songs for a road trip playlist", "ways to cut down on plastic at home",
    "cheap ways to decorate a dorm room", "things to do in the first week at a new job",
    "herbs that are easy to grow indoors", "activities to keep kids busy on a long flight",
    "sources of plant-based protein", "ways to practice mindfulness during a busy day",
    "things to know before adopting a cat", "warm-up exercises before a run", "names for a small coffee shop",
    "fun facts about octopuses", "major inventions of the 19th century", "ways to use leftover rice",
    "tips for first-time home buyers", "safety tips for hiking alone", "useful apps for traveling abroad",
    "questions to ask my doctor at a checkup", "uses for baking soda around the house",
    "ways to encourage kids to read more", "side dishes for a barbecue", "things to do with overripe bananas",
    "ways to keep a conversation going", "features to look for in a new laptop", "common houseplant pests",
    "benefits of regular walking", "dog breeds that are good with kids",
    "short classic novels I could read in a weekend", "words that describe a sunset", "team-building activities",
    "things to declutter first before moving", "study techniques that actually work",
    "ways to lower my electricity bill", "snacks for a movie night", "places to visit in Italy",
    "winter activities for families", "questions to ask when buying a used car",
    "tips for writing a good email subject line", "ways to practice gratitude",
    "basic Spanish phrases for travelers", "money habits worth building in your twenties",
    "reasons a cake might sink in the middle", "ways to make a bedroom more relaxing",
    "tools every homeowner should own", "dishes to bring to a potluck", "ways to celebrate a birthday on a budget",
    "things to do in a new city on your first day", "easy vegetarian lunches", "ways to stay focused while studying",
    "good habits for a healthy back", "questions to ask on a first date", "ideas for a family photo shoot",
    "things to keep in my car for emergencies", "ways to reduce food waste", "classic card games for two players",
    "fun weekend projects for kids", "ways to get better at chess", "easy instruments for adults to learn",
]
LIST_TEMPLATES = [
    "Give me {n} {x}.", "List {n} {x}.", "What are some {x}?", "Can you suggest a few {x}?", "Name {n} {x}.",
    "Could you come up with {n} {x}?", "Make a list of {x}.", "I'm looking for {x}. Any suggestions?",
    "Brainstorm {n} {x} for me.", "What are your top {n} {x}?", "Help me put together a list of {x}.",
    "Quick list of {x}, please.", "I'm making some notes for a friend. What are a few {x}?", "Share {n} {x}, with a short note on each.",
    "Give me a short list of {x}.", "I need some {x}. Can you list {n}?", "Off the top of your head, what are {n} {x}?",
    "Can you list {n} {x}? Just the list is fine.",
]


def gen_lists(rng: random.Random):
    items = []
    for x in LIST_SUBJECTS:
        for tpl in rng.sample(LIST_TEMPLATES, 2):
            k = rng.choice([3, 4, 5, 5, 6, 7, 8, 10])
            n = NUM_WORDS[k] if rng.random() < 0.6 else str(k)
            items.append((x, tpl.format(x=x, n=n, persona=rng.choice(PERSONAS))))
    return items


# ---------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------
# (a, b, context or "", is a choice between options)
PAIRS = [
    ("cats", "dogs", "as pets for a busy person", True), ("renting", "buying a home", "", True),
    ("Python", "JavaScript", "as a first programming language", True), ("tea", "coffee", "for a morning routine", True),
    ("a Roth IRA", "a traditional IRA", "", True), ("running", "swimming", "for overall fitness", True),
    ("e-books", "paper books", "", True), ("a laptop", "a tablet", "for a college student", True),
    ("weather", "climate", "", False), ("a virus", "a bacterium", "", False), ("baking soda", "baking powder", "", False),
    ("a crocodile", "an alligator", "", False), ("butter", "margarine", "for baking", True), ("stocks", "bonds", "", True),
    ("a debit card", "a credit card", "for everyday purchases", True), ("the train", "a plane", "for a 500 km trip", True),
    ("a hurricane", "a tornado", "", False), ("an electric car", "a hybrid", "for a long daily commute", True),
    ("yoga", "pilates", "", True), ("Spanish", "French", "as a second language for an English speaker", True),
    ("a hostel", "a hotel", "for a solo traveler", True), ("SQL databases", "NoSQL databases", "", True),
    ("iPhone", "Android phones", "", True), ("a Mac", "a Windows laptop", "for a graphic designer", True),
    ("a savings account", "a certificate of deposit", "", True), ("whole milk", "oat milk", "", True),
    ("a fixed-rate mortgage", "an adjustable-rate mortgage", "", True), ("weightlifting", "cardio", "for weight loss", True),
    ("a latte", "a cappuccino", "", False), ("affect", "effect", "", False), ("an emu", "an ostrich", "", False),
    ("a frog", "a toad", "", False), ("the Renaissance", "the Enlightenment", "", False),
    ("a parliamentary system", "a presidential system", "", False), ("a sole proprietorship", "an LLC", "for a small bakery", True),
    ("Git", "GitHub", "", False), ("RAM", "storage", "", False), ("a mutual fund", "an ETF", "", True),
    ("a heat pump", "a gas furnace", "for a cold climate", True), ("a gas stove", "an induction cooktop", "", True),
    ("cast iron", "nonstick pans", "", True), ("a rabbit", "a guinea pig", "as a child's first pet", True),
    ("soccer", "basketball", "for a shy eight-year-old", True), ("an acoustic guitar", "an electric guitar", "for a beginner", True),
    ("piano", "violin", "for an adult beginner", True), ("watercolor", "acrylic paint", "for a beginner", True),
    ("hiking boots", "trail runners", "for day hikes", True), ("freezing", "canning", "for preserving vegetables", True),
    ("annuals", "perennials", "", False), ("raised beds", "in-ground gardens", "", True), ("a simile", "a metaphor", "", False),
    ("a memoir", "an autobiography", "", False), ("jam", "jelly", "", False), ("stock", "broth", "", False),
    ("a cold", "the flu", "", False), ("a sprain", "a strain", "", False), ("aerobic exercise", "anaerobic exercise", "", False),
    ("working from home", "working in an office", "", True), ("a gap year", "going straight to college", "", True),
    ("HTML", "CSS", "", False), ("a compiler", "an interpreter", "", False),
    ("machine learning", "traditional programming", "", False), ("email", "a phone call", "for complaining to a company", True),
    ("a credit union", "a bank", "", True), ("term life insurance", "whole life insurance", "", True),
    ("a tornado watch", "a tornado warning", "", False), ("a meteor", "a meteorite", "", False),
    ("an ocean", "a sea", "", False), ("a lake", "a pond", "", False), ("brown rice", "white rice", "", True),
    ("sweet potatoes", "regular potatoes", "", True), ("a marathon", "a half marathon", "for a first long race", True),
    ("a road bike", "a mountain bike", "for commuting", True), ("a condo", "a house", "for a young family", True),
    ("leasing a car", "buying a car", "", True), ("a vacation rental", "a hotel", "for a family trip", True),
    ("a window seat", "an aisle seat", "on a long flight", True), ("a crossword", "sudoku", "for keeping my mind sharp", True),
    ("a monarchy", "a republic", "", False), ("a virus scan", "a firewall", "", False), ("speed", "velocity", "", False),
    ("mass", "weight", "", False), ("a comet", "an asteroid", "", False), ("an herb", "a spice", "", False),
    ("a fruit", "a vegetable", "", False), ("a psychologist", "a psychiatrist", "", False),
    ("a podcast", "a blog", "for sharing recipes", True), ("a gym membership", "working out at home", "", True),
]
COMPARE_ANY = [
    "What's the difference between {a} and {b}?", "Compare {a} and {b}{ctx}.", "How is {a} different from {b}?",
    "{A} vs. {b}: what are the main differences?", "Can you explain how {a} and {b} differ?",
    "Give me a quick comparison of {a} and {b}.", "What do {a} and {b} have in common, and how are they different?",
    "In a few sentences, compare {a} with {b}.", "Help me understand {a} versus {b}.",
]
COMPARE_CHOICE = [
    "{A} or {b}{ctx}: which would you pick and why?", "Should I go with {a} or {b}{ctx}?",
    "What are the pros and cons of {a} versus {b}{ctx}?", "Is {a} better than {b}{ctx}?",
    "I'm {persona} trying to decide between {a} and {b}{ctx}. What should I consider?",
    "Which is better{ctx}: {a} or {b}?", "I can't decide between {a} and {b}{ctx}. Can you help me weigh them up?",
]
COMPARE_CONCEPT = [
    "I always mix up {a} and {b}. How do I tell them apart?",
    "My friend says {a} and {b} are basically the same thing. Are they?",
    "Is there a real difference between {a} and {b}, or do people use the terms interchangeably?",
    "What's an easy way to remember the difference between {a} and {b}?",
]


def gen_comparisons(rng: random.Random):
    items = []
    for a, b, ctx, choice in PAIRS:
        pool = COMPARE_ANY + (COMPARE_CHOICE if choice else COMPARE_CONCEPT)
        c = f" {ctx}" if ctx else ""
        for tpl in rng.sample(pool, 2):
            items.append((f"{a}|{b}", tpl.format(a=a, b=b, A=cap(a), ctx=c, persona=rng.choice(PERSONAS))))
    return items


# ---------------------------------------------------------------------------
# short reasoning
# ---------------------------------------------------------------------------
NAMES = [
    "Ana", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Imani", "Jonas", "Kate", "Luis", "Mia", "Noah",
    "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Yuki", "Zoe", "Leo", "Nina", "Theo",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
COMPARATIVES = [("taller", "tallest", "shortest"), ("older", "oldest", "youngest"), ("faster", "fastest", "slowest")]
REASONING_FIXED = [
    "I put ice cubes in a glass of water and left it in the sun for an hour. What happened, and why?",
    "If you have a 3-liter jug and a 5-liter jug, how can you measure exactly 4 liters of water?",
    "What weighs more, a kilogram of feathers or a kilogram of bricks?",
    "A farmer has 17 sheep and all but 9 run away. How many are left?",
    "If one shirt takes an hour to dry on the line, how long do three shirts take if they hang side by side?",
    "You walk into a dark cabin with one match. There's a candle, an oil lamp, and a fireplace. What do you light first?",
    "If you pass the person in second place in a race, what place are you in?",
    "A bat and a ball cost $1.10 together. The bat costs $1.00 more than the ball. How much does the ball cost?",
    "How many months of the year have 28 days?",
    "Tom's mother has three children. Two of them are named April and May. What is the third child's name?",
    "There are 6 apples on the table and you take away 4. How many apples do you have?",
    "Should I bring an umbrella if the forecast says a 70% chance of rain and I'll be walking for an hour? Explain your thinking.",
    "My bread didn't rise. I used yeast that had been in the cupboard for two years. What's the most likely reason?",
    "My houseplant's leaves are turning yellow and the soil is always wet. What's probably going on?",
    "My car won't start and the dashboard lights are very dim. What's the most likely cause?",
    "If a store takes 20% off and then another 10% off the sale price, is that the same as 30% off? Why or why not?",
    "Three friends want to share 8 slices of pizza equally without cutting any slices. Can they? Explain.",
    "If every person in a room of 5 shakes hands with every other person once, how many handshakes happen?",
    "A snail climbs 3 meters up a wall each day and slides back 2 meters each night. How many days does it take to reach the top of a 10-meter wall?",
    "Which is the better deal: 500 grams of rice for $2, or 1 kilogram for $3.50?",
    "If it takes 5 machines 5 minutes to make 5 widgets, how long would 100 machines take to make 100 widgets?",
    "My phone is at 80% and loses about 10% per hour. I'll be out for 6 hours. Will it last without charging?",
    "A doctor gives you three pills and tells you to take one every half hour. How long will the pills last?",
    "Why is it a bad idea to put a metal spoon in the microwave?",
    "If I plant a seed in a closet with no light at all, what will probably happen to the seedling?",
    "A clock gains 2 minutes every hour. If I set it correctly at noon, what time will it show at 6 p.m.?",
    "If all roses are flowers and some flowers fade quickly, can we be sure that some roses fade quickly?",
    "A library is open Monday to Friday. If I want to return a book three days after Thursday, is the library open that day?",
    "I have a drawer with 10 black socks and 10 white socks, and the room is dark. How many socks do I need to take out to be sure I have a matching pair?",
    "Why do ice cubes stick to your fingers when you take them straight out of the freezer?",
    "If a train leaves at 9:50 and the trip takes 35 minutes, will I make a meeting at 10:30 that's a five-minute walk from the station?",
    "A box of 12 cookies is shared between 4 kids, but one kid doesn't like cookies. How many does each of the others get?",
    "Is it possible for a family to have two mothers and two daughters with only three people? How?",
    "If yesterday was Friday, what day will it be the day after tomorrow?",
    "I'm taller than my brother but shorter than my sister. Who is the tallest of the three of us?",
    "A recipe takes 20 minutes to prepare and 45 minutes to bake. If I want to eat at 7 p.m., what's the latest I can start?",
    "Why does a balloon filled with helium float, but one filled with your breath doesn't?",
    "If I fold a piece of paper in half three times and then punch one hole through it, how many holes will there be when I unfold it?",
]
REASONING_WRAPPERS = [
    "{q}", "{q} Explain your reasoning briefly.", "Little puzzle for you: {q}", "{q} Think it through step by step.",
    "Can you reason this out? {q}", "Here's one that's been bugging me. {q}", "{q} Keep the explanation short.",
]


def _reasoning_generated(rng: random.Random):
    out = []
    for _ in range(60):  # ordering chains
        a, b, c = rng.sample(NAMES, 3)
        comp, sup, inv = rng.choice(COMPARATIVES)
        form = rng.randrange(4)
        if form == 0:
            q = f"{a} is {comp} than {b}, and {b} is {comp} than {c}. Who is the {inv}?"
        elif form == 1:
            q = f"{b} is {comp} than {c}. {a} is {comp} than {b}. Who is the {sup} of the three?"
        elif form == 2:
            q = f"If {a} is {comp} than {b} and {b} is {comp} than {c}, is {c} {comp} than {a}?"
        else:
            d = rng.choice([n for n in NAMES if n not in (a, b, c)])
            q = f"{a} is {comp} than {b}. {c} is {comp} than {a}. {b} is {comp} than {d}. Put all four in order, from {sup} to {inv}."
        out.append(q)
    for _ in range(40):  # days of the week
        day = rng.choice(DAYS)
        n = rng.choice([2, 3, 4, 5, 8, 9, 10, 12, 15, 20])
        form = rng.randrange(4)
        if form == 0:
            q = f"If today is {day}, what day of the week will it be in {n} days?"
        elif form == 1:
            q = f"If the day after tomorrow is {day}, what day was yesterday?"
        elif form == 2:
            q = f"My package shipped on a {day} and takes {n} days to arrive. What day of the week will it come?"
        else:
            q = f"If {n} days ago it was {day}, what day is it today?"
        out.append(q)
    for _ in range(30):  # clock times
        h = rng.randint(1, 11)
        m = rng.choice([0, 10, 15, 20, 30, 40, 45, 50])
        dur_h, dur_m = rng.choice([(0, 45), (1, 20), (1, 50), (2, 15), (0, 35), (1, 40), (2, 30), (3, 10)])
        ampm = rng.choice(["a.m.", "p.m."])
        t = f"{h}:{m:02d} {ampm}"
        dur = (f"{dur_h} hour{'s' if dur_h > 1 else ''} and " if dur_h else "") + f"{dur_m} minutes"
        thing = rng.choice(["A movie starts", "My train leaves", "The meeting begins", "The game kicks off", "Our flight departs"])
        form = rng.randrange(2)
        if form == 0 and thing in ("A movie starts", "The meeting begins", "The game kicks off"):
            q = f"{thing} at {t} and lasts {dur}. What time does it end?"
        else:
            q = f"{thing} at {t}. If I need to be there {dur} early, what time should I arrive?"
        out.append(q)
    for _ in range(30):  # ages
        a, b = rng.sample(NAMES, 2)
        age = rng.randint(4, 15)
        diff = rng.randint(2, 9)
        yrs = rng.randint(2, 10)
        form = rng.randrange(3)
        if form == 0:
            q = f"{a} is {diff} years older than {b}, who is {age}. How old will {a} be in {yrs} years?"
        elif form == 1:
            q = f"In {yrs} years, {a} will be {age + yrs + diff}. {b} is {diff} years younger than {a}. How old is {b} now?"
        else:
            q = f"{a} was born {diff} years before {b}. When {b} turns {age + 10}, how old will {a} be?"
        out.append(q)
    return out


def gen_reasoning(rng: random.Random):
    items = []
    for q in REASONING_FIXED:
        for w in rng.sample(REASONING_WRAPPERS, 2):
            items.append((q, w.format(q=q)))
    for q in _reasoning_generated(rng):
        w = rng.choice(REASONING_WRAPPERS)
        items.append((q, w.format(q=q)))
    return items


# ---------------------------------------------------------------------------
# arithmetic (exact reference answers)
# ---------------------------------------------------------------------------
def fmt_num(x) -> str:
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    s = f"{float(x):.6f}".rstrip("0").rstrip(".")
    assert Fraction(s) == x, (x, s)
    return s


def money(x) -> str:
    x = Fraction(x)
    if x.denominator == 1:
        return f"${x.numerator}"
    s = f"{float(x):.2f}"
    assert Fraction(s) == x, x
    return f"${s}"


def _arith_one(rng: random.Random):
    """Return (prompt, exact answer as Fraction)."""
    kind = rng.randrange(30)
    F = Fraction
    if kind < 12:  # bare operations
        op = rng.choice(["+", "-", "x", "/", "%", "sq", "half", "+3", "mix"])
        if op == "+":
            a, b = rng.randint(12, 480), rng.randint(12, 480)
            tpl = rng.choice(["What is {a} + {b}?", "Calculate {a} + {b}.", "Can you add {a} and {b} for me?",
                              "What's {a} plus {b}?", "Add {a} and {b}.", "{a} + {b} = ?"])
            return tpl.format(a=a, b=b), F(a + b)
        if op == "-":
            a, b = rng.randint(20, 500), rng.randint(5, 300)
            tpl = rng.choice(["What is {a} minus {b}?", "Subtract {b} from {a}.", "What's {a} - {b}?",
                              "Calculate {a} - {b}.", "What do you get when you take {b} away from {a}?"])
            return tpl.format(a=a, b=b), F(a - b)
        if op == "x":
            a, b = rng.randint(3, 25), rng.randint(3, 25)
            tpl = rng.choice(["What is {a} x {b}?", "What's {a} times {b}?", "Multiply {a} by {b}.", "What is {a} * {b}?",
                              "What do you get if you multiply {a} by {b}?", "Quick math: {a} times {b}?",
                              "Calculate {a} × {b}."])
            return tpl.format(a=a, b=b), F(a * b)
        if op == "/":
            b, q = rng.randint(2, 12), rng.randint(3, 30)
            a = b * q
            tpl = rng.choice(["What is {a} divided by {b}?", "What's {a} / {b}?", "Divide {a} by {b}.",
                              "How many times does {b} go into {a}?", "{a} divided by {b} equals what?"])
            return tpl.format(a=a, b=b), F(q)
        if op == "%":
            p = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 75])
            base = rng.choice([20, 40, 60, 80, 120, 150, 200, 240, 300, 360, 400, 500, 800])
            tpl = rng.choice(["What is {p}% of {n}?", "Calculate {p} percent of {n}.", "What's {p}% of {n}?",
                              "How much is {p} percent of {n}?"])
            return tpl.format(p=p, n=base), F(p * base, 100)
        if op == "sq":
            a = rng.randint(2, 20)
            tpl = rng.choice(["What is {a} squared?", "What's {a} to the power of 2?", "Calculate {a}²."])
            return tpl.format(a=a), F(a * a)
        if op == "half":
            a = rng.randint(7, 250)
            tpl = rng.choice(["What is half of {a}?", "What's one half of {a}?", "Divide {a} in half. What do you get?"])
            return tpl.format(a=a), F(a, 2)
        if op == "+3":
            a, b, c = rng.randint(5, 99), rng.randint(5, 99), rng.randint(5, 99)
            tpl = rng.choice(["Quick math: {a} + {b} + {c}?", "What is {a} + {b} + {c}?", "Add up {a}, {b} and {c}.",
                              "What's the sum of {a}, {b}, and {c}?"])
            return tpl.format(a=a, b=b, c=c), F(a + b + c)
        a, b, c = rng.randint(2, 12), rng.randint(2, 12), rng.randint(1, 40)
        tpl = rng.choice(["What is {a} x {b} + {c}?", "Calculate {a} * {b} + {c}.", "What's {c} + {a} times {b}?"])
        return tpl.format(a=a, b=b, c=c), F(a * b + c)
    # word problems
    w = rng.randrange(18)
    if w == 0:
        p, k = rng.randint(2, 9), rng.choice([6, 10, 12, 18, 30])
        return rng.choice([f"If I buy {p} packs of {k} eggs, how many eggs do I have?",
                           f"Eggs come in cartons of {k}. How many eggs are in {p} cartons?"]), F(p * k)
    if w == 1:
        price = F(rng.choice([25, 50, 75, 120, 150, 199, 250, 300, 350]), 100)
        n = rng.randint(2, 12)
        item = rng.choice(["apples", "bananas", "pens", "stickers", "postcards", "bread rolls", "limes"])
        return rng.choice([f"{cap(item)} cost {money(price)} each. How much do {n} {item} cost?",
                           f"If one of these {item} costs {money(price)}, what do {n} of them cost in total?"]), price * n
    if w == 2:
        n = rng.randint(2, 8)
        each = rng.randint(8, 45)
        total = n * each
        return rng.choice([f"Dinner for {n} people came to ${total}. If we split it evenly, how much does each person pay?",
                           f"We're splitting a ${total} bill {n} ways. How much is each share?"]), F(each)
    if w == 3:
        bill = rng.choice([10, 20, 50, 100])
        cost = F(rng.randint(100, bill * 100 - 25), 100)
        cost = F(round(cost * 4), 4)  # quarters, keeps it easy
        if cost >= bill:
            cost = F(bill) - F(3, 4)
        return rng.choice([f"I paid with a ${bill} bill for something that cost {money(cost)}. How much change should I get?",
                           f"Something costs {money(cost)} and I hand over ${bill}. What's my change?"]), bill - cost
    if w == 4:
        r = rng.choice([10, 12, 15, 20, 25, 30, 40])
        d = rng.randint(4, 20)
        return f"A book has {r * d} pages. If I read {r} pages a day, how many days will it take to finish?", F(d)
    if w == 5:
        s, wk = rng.choice([5, 10, 15, 20, 25, 40, 50]), rng.randint(4, 26)
        return rng.choice([f"If I save ${s} every week, how much will I have saved after {wk} weeks?",
                           f"I put away ${s} a week. How much will I have after {wk} weeks?"]), F(s * wk)
    if w == 6:
        a, d, y = rng.randint(5, 30), rng.randint(2, 9), rng.randint(2, 10)
        return f"My sister is {a} and I'm {d} years older than her. How old will I be in {y} years?", F(a + d + y)
    if w == 7:
        a = rng.randint(20, 90)
        b = rng.randint(3, a - 5)
        thing = rng.choice(["stickers", "marbles", "baseball cards", "cookies", "seashells"])
        return f"I had {a} {thing} and gave {b} to my friend. How many do I have left?", F(a - b)
    if w == 8:
        s = rng.choice([2, 4, 6])
        per = rng.choice([50, 60, 75, 100, 125])
        t = rng.choice([x for x in (3, 4, 6, 8, 10, 12) if x != s])
        return (f"A recipe uses {per * s} grams of flour for {s} servings. How many grams do I need for {t} servings?",
                F(per * t))
    if w == 9:
        v, h = rng.choice([40, 50, 60, 70, 80, 90, 100]), rng.randint(2, 5)
        return rng.choice([f"If I drive at {v} km/h for {h} hours, how far do I go in kilometers?",
                           f"A bus travels at a steady {v} km/h. How many kilometers does it cover in {h} hours?"]), F(v * h)
    if w == 10:
        p = rng.choice([20, 40, 60, 80, 100, 120, 160, 200])
        d = rng.choice([10, 20, 25, 50])
        thing = rng.choice(["jacket", "pair of shoes", "lamp", "backpack", "coffee maker"])
        return f"A {thing} costs ${p} and is {d}% off. What is the sale price in dollars?", F(p) * (100 - d) / 100
    if w == 11:
        a, b = rng.randint(60, 98), rng.randint(60, 98)
        c = rng.randint(60, 98)
        c += (-(a + b + c)) % 3
        if c > 100:
            c -= 3
        return f"My test scores were {a}, {b}, and {c}. What's my average score?", F(a + b + c, 3)
    if w == 12:
        r, s = rng.randint(8, 25), rng.randint(10, 30)
        return f"A theater has {r} rows with {s} seats in each row. How many seats are there in total?", F(r * s)
    if w == 13:
        wage, h = rng.choice([12, 15, 16, 18, 20, 22, 25]), rng.randint(8, 40)
        return f"I earn ${wage} an hour and worked {h} hours this week. How much did I earn before taxes?", F(wage * h)
    if w == 14:
        people = rng.choice([2, 3, 4, 6, 8])
        pizzas = rng.choice([x for x in range(1, 7) if (x * 8) % people == 0])
        return (f"We ordered {pizzas} pizza{'s' if pizzas > 1 else ''} cut into 8 slices each, and there are {people} of us. "
                f"How many slices does each person get if we share equally?"), F(pizzas * 8, people)
    if w == 15:
        bill = rng.choice([20, 40, 60, 80, 100, 120])
        tip = rng.choice([10, 15, 20])
        return rng.choice([f"What's a {tip}% tip on a ${bill} bill?",
                           f"Our bill is ${bill}. How much should I leave for a {tip}% tip?"]), F(bill * tip, 100)
    if w == 16:
        a, b = rng.randint(-5, 12), rng.randint(4, 15)
        return (f"It was {a} degrees this morning and the temperature dropped by {b} degrees by midnight. "
                f"What was the temperature at midnight?"), F(a - b)
    q, d = rng.randint(2, 12), rng.randint(1, 10)
    return f"I have {q} quarters and {d} dimes. How much money is that in dollars?", F(25 * q + 10 * d, 100)


ARITH_WRAPPERS = ["{q}", "{q}", "{q}", "{q} Show your work.", "Hey, quick one: {q}", "{q} Just give me the number.",
                  "Can you help with this? {q}", "{q} Please explain briefly."]


def gen_arithmetic(rng: random.Random):
    items = []
    for _ in range(700):
        q, ans = _arith_one(rng)
        w = rng.choice(ARITH_WRAPPERS)
        if w.endswith(": {q}") and not re.match(r"(I\b|[A-Z]{2}|\d)", q):
            w = w.replace("{q}", "{lq}")
        p = w.format(q=q, lq=lc(q))
        check = [number_check(ans, 1e-6, checks.find_numbers(p))]
        items.append(Item(q, p, check, fmt_num(ans), answer=f"num:{fmt_num(ans)}", bucket="number"))
    # an answer that is one of the question's own numbers (an average equal to one score) would pass an echo
    return [it for it in items if not echo_passes(it)]


# ---------------------------------------------------------------------------
# unit conversion
# ---------------------------------------------------------------------------
# name: (from singular, from plural, from abbr, to singular, to plural, to abbr, factor, values, tolerance, contexts)
# factor is a Fraction (exact) or a float (approximate conversion).
F_ = Fraction
UNITS = [
    ("kilometer", "kilometers", "km", "meter", "meters", "m", F_(1000), [1, 2, 3, 5, 7, 12, 1.5, 2.5, 0.5, 4.2],
     ["I walked {v} km this morning. How many meters is that?", "The race is {v} km long. How many meters is that?"]),
    ("meter", "meters", "m", "centimeter", "centimeters", "cm", F_(100), [1, 2, 3, 4, 1.5, 2.5, 0.75, 1.8, 6],
     ["My couch is {v} meters long. How many centimeters is that?", "I need {v} m of fabric. How many centimeters is that?"]),
    ("centimeter", "centimeters", "cm", "millimeter", "millimeters", "mm", F_(10), [3, 8, 12, 25, 4.5, 15, 40],
     ["A screw is {v} cm long. How long is it in millimeters?"]),
    ("meter", "meters", "m", "kilometer", "kilometers", "km", F_(1, 1000), [500, 1500, 2000, 3500, 750, 10000, 250, 4200],
     ["My walk to school is {v} meters. How many kilometers is that?", "The trail is {v} meters long. What is that in kilometers?"]),
    ("kilogram", "kilograms", "kg", "gram", "grams", "g", F_(1000), [1, 2, 3, 1.5, 2.5, 0.5, 0.25, 4, 0.75],
     ["A recipe calls for {v} kg of flour. How many grams is that?", "This bag of rice weighs {v} kg. How many grams is that?"]),
    ("gram", "grams", "g", "kilogram", "kilograms", "kg", F_(1, 1000), [500, 250, 1500, 2000, 750, 3200, 100],
     ["My parcel weighs {v} grams. How many kilograms is that?"]),
    ("liter", "liters", "L", "milliliter", "milliliters", "mL", F_(1000), [1, 2, 1.5, 0.5, 0.75, 3, 2.25, 0.3],
     ["My water bottle holds {v} liters. How many milliliters is that?", "The pot holds {v} L. What is that in milliliters?"]),
    ("milliliter", "milliliters", "mL", "liter", "liters", "L", F_(1, 1000), [500, 250, 1500, 750, 2000, 330, 3000],
     ["A can holds {v} mL. How many liters is that?"]),
    ("hour", "hours", "hr", "minute", "minutes", "min", F_(60), [1, 2, 3, 1.5, 2.5, 3.5, 4, 0.5, 0.25, 5, 1.25],
     ["My flight is {v} hours long. How many minutes is that?", "The movie runs {v} hours. How many minutes is that?",
      "I worked {v} hours on this project today. How many minutes is that?"]),
    ("minute", "minutes", "min", "second", "seconds", "sec", F_(60), [1, 2, 3, 5, 10, 1.5, 2.5, 4, 7, 12],
     ["A song is {v} minutes long. How many seconds is that?", "I held a plank for {v} minutes. How many seconds is that?"]),
    ("minute", "minutes", "min", "hour", "hours", "hr", F_(1, 60), [90, 120, 150, 30, 45, 180, 210, 75, 240, 15],
     ["The drive takes {v} minutes. How many hours is that?", "I slept for {v} minutes on the train. How many hours is that?"]),
    ("day", "days", "days", "hour", "hours", "hr", F_(24), [1, 2, 3, 4, 5, 7, 10, 1.5, 0.5],
     ["My trip lasts {v} days. How many hours is that?"]),
    ("week", "weeks", "weeks", "day", "days", "days", F_(7), [2, 3, 4, 6, 8, 10, 12, 52, 1.5],
     ["My vacation is {v} weeks long. How many days is that?", "The course lasts {v} weeks. How many days is that?"]),
    ("year", "years", "years", "month", "months", "months", F_(12), [1, 2, 3, 1.5, 2.5, 4, 5, 10],
     ["My baby is {v} years old. How many months is that?"]),
    ("foot", "feet", "ft", "inch", "inches", "inches", F_(12), [1, 2, 3, 5, 6, 1.5, 2.5, 4, 10],
     ["A shelf is {v} feet long. How many inches is that?", "The bookcase is {v} feet tall. What is that in inches?"]),
    ("yard", "yards", "yd", "foot", "feet", "ft", F_(3), [2, 4, 5, 10, 12, 20, 100, 1.5],
     ["The garden is {v} yards long. How many feet is that?"]),
    ("inch", "inches", "inches", "centimeter", "centimeters", "cm", F_(254, 100), [1, 2, 5, 10, 12, 15, 24, 6],
     ["My laptop screen is {v} inches wide. How many centimeters is that?"]),
    ("foot", "feet", "ft", "meter", "meters", "m", F_(3048, 10000), [10, 3, 5, 20, 100, 6],
     ["The ceiling is {v} feet high. How tall is that in meters?"]),
    ("gallon", "gallons", "gal", "quart", "quarts", "qt", F_(4), [1, 2, 3, 5, 1.5, 10],
     ["I bought {v} gallons of milk for a party. How many quarts is that?"]),
    ("pound", "pounds", "lb", "ounce", "ounces", "oz", F_(16), [1, 2, 3, 1.5, 0.5, 5, 2.5],
     ["The recipe needs {v} pounds of butter. How many ounces is that?"]),
    ("dozen", "dozen", "dozen", "item", "items", "items", F_(12), [2, 3, 4, 5, 1.5, 10],
     ["How many eggs are in {v} dozen?", "I ordered {v} dozen donuts for the office. How many donuts is that?",
      "How many cookies are in {v} dozen?"]),
    ("mile", "miles", "mi", "kilometer", "kilometers", "km", 1.609344, [1, 3, 5, 10, 26.2, 2, 50, 100],
     ["I drove {v} miles today. Roughly how many kilometers is that?", "A marathon is about {v} miles. How many kilometers is that?",
      "The sign says the next town is {v} miles away. How far is that in kilometers?"]),
    ("kilometer", "kilometers", "km", "mile", "miles", "mi", 0.621371, [5, 10, 21, 42, 100, 8, 15],
     ["I ran a {v} km race. How many miles is that?"]),
    ("pound", "pounds", "lb", "kilogram", "kilograms", "kg", 0.45359237, [10, 20, 50, 150, 180, 5, 45],
     ["My suitcase weighs {v} pounds. How much is that in kilograms?", "My dog weighs {v} lb. What's that in kg?"]),
    ("kilogram", "kilograms", "kg", "pound", "pounds", "lb", 2.20462, [1, 5, 10, 23, 65, 80, 2.5],
     ["I weigh {v} kg. What's that in pounds?", "The airline limit is {v} kg. How many pounds is that?"]),
]
UNIT_GENERIC = [
    "Convert {v} {fn} to {tp}.", "How many {tp} are in {v} {fn}?", "{v} {fa} is how many {tp}?",
    "What is {v} {fn} in {tp}?", "Quick conversion: {v} {fa} to {ta}?", "How many {tp} is {v} {fn}?",
    "Can you convert {v} {fn} into {tp} for me?", "{v} {fn} equals how many {tp}?", "Please convert {v} {fa} to {tp}.",
    "What's {v} {fn} expressed in {tp}?",
]
TEMP_C = ["Convert {v}°C to Fahrenheit.", "What is {v} degrees Celsius in Fahrenheit?",
          "It's {v}°C outside. What's that in Fahrenheit?", "How many degrees Fahrenheit is {v}°C?",
          "The recipe says to bake at {v} degrees Celsius, but my oven uses Fahrenheit. What should I set it to?"]
TEMP_F = ["Convert {v}°F to Celsius.", "What is {v} degrees Fahrenheit in Celsius?",
          "My thermometer reads {v}°F. What is that in Celsius?", "The forecast says {v}°F tomorrow. How much is that in Celsius?"]


# target unit -> the spellings its answer may carry (matched right after the number, see eval/checks.py)
UNIT_SPELLINGS = {
    "meter": ["m", "meter", "meters", "metre", "metres"],
    "centimeter": ["cm", "centimeter", "centimeters", "centimetre", "centimetres"],
    "millimeter": ["mm", "millimeter", "millimeters", "millimetre", "millimetres"],
    "kilometer": ["km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"],
    "gram": ["g", "gram", "grams", "gramme", "grammes"],
    "kilogram": ["kg", "kgs", "kilogram", "kilograms", "kilo", "kilos", "kilogramme", "kilogrammes"],
    "milliliter": ["ml", "milliliter", "milliliters", "millilitre", "millilitres"],
    "liter": ["l", "liter", "liters", "litre", "litres"],
    "second": ["s", "sec", "secs", "second", "seconds"],
    "minute": ["min", "mins", "minute", "minutes"],
    "hour": ["h", "hr", "hrs", "hour", "hours"],
    "day": ["day", "days"],
    "month": ["month", "months"],
    "inch": ["inch", "inches"],  # not "in": "12 in a foot"
    "foot": ["ft", "foot", "feet"],
    "quart": ["qt", "qts", "quart", "quarts"],
    "ounce": ["oz", "ounce", "ounces"],
    "mile": ["mi", "mile", "miles"],
    "pound": ["lb", "lbs", "pound", "pounds"],
    "fahrenheit": ["°f", "° f", "f", "fahrenheit", "degrees fahrenheit", "degree fahrenheit", "degrees f", "deg f"],
    "celsius": ["°c", "° c", "c", "celsius", "degrees celsius", "degree celsius", "degrees c", "deg c", "centigrade",
                "degrees centigrade"],
}
TEMP_CONSTANTS = [32, 1.8, 9, 5]  # restated by a worked answer: F = C x 9/5 + 32


def _unit_item(group: str, prompt: str, answer, tolerance: float, unit: str | None, given, shown: str) -> Item:
    check = [number_check(answer, tolerance, given, UNIT_SPELLINGS[unit] if unit else None)]
    return Item(group, prompt, check, shown, answer=f"num:{fmt_num(Fraction(str(answer)))}", bucket="number")


def gen_unit_conversion(rng: random.Random):
    items = []
    for frm_s, frm_p, fa, to_s, to_p, ta, factor, values, contexts in UNITS:
        exact = isinstance(factor, Fraction)
        unit = None if to_s == "item" else to_s
        for v in values:
            vv = Fraction(str(v))
            vs = fmt_num(vv)
            fn = frm_s if vv == 1 else frm_p
            pool = UNIT_GENERIC + contexts * 2
            if frm_s == "dozen" or to_s == "item":
                pool = contexts
            tpls = []
            for tpl in rng.sample(pool, min(len(pool), 3)):
                if tpl not in tpls:
                    tpls.append(tpl)
            for tpl in tpls[:2]:
                p = tpl.format(v=vs, fn=fn, tp=to_p, fa=fa, ta=ta)
                if exact:
                    ans, tol, shown = vv * factor, 1e-6, fmt_num(vv * factor)
                else:
                    ans, tol = round(float(vv) * factor, 4), 0.01
                    shown = f"{ans:.2f}".rstrip("0").rstrip(".")
                shown += "" if unit is None else f" {to_s if Fraction(shown) == 1 else to_p}"
                given = [vv, factor, 1 / Fraction(factor), 1]  # the value, and the factor a worked answer restates
                items.append(_unit_item(f"{frm_s}->{to_s}:{vs}", p, ans, tol, unit, given, shown))
    temps = []
    for c in range(-20, 45, 5):
        for tpl in rng.sample(TEMP_C[:4], 2):
            temps.append((f"C->F:{c}", tpl.format(v=c), c, F_(c * 9, 5) + 32, "fahrenheit"))
    for c in (150, 160, 170, 180, 190, 200, 220):
        temps.append((f"C->F:{c}", TEMP_C[4].format(v=c), c, F_(c * 9, 5) + 32, "fahrenheit"))
    for k in range(-4, 13):
        f = 32 + 9 * k
        for tpl in rng.sample(TEMP_F, 2):
            temps.append((f"F->C:{f}", tpl.format(v=f), f, F_(5 * k), "celsius"))
    for g, p, v, ans, unit in temps:
        shown = fmt_num(ans) + ("°F" if unit == "fahrenheit" else "°C")
        items.append(_unit_item(g, p, ans, 1e-6, unit, [v] + TEMP_CONSTANTS, shown))
    wrapped = []
    for it in items:
        r = rng.random()
        p = it.prompt
        if r < 0.12:
            p += " Show the calculation."
        elif r < 0.2:
            p = "Hey, " + lc(p) if not p[:2].isupper() else p
        wrapped.append(Item(it.group, p, it.check, it.reference, it.answer, it.bucket))
    return [it for it in wrapped if not echo_passes(it)]


# ---------------------------------------------------------------------------
# format-constrained requests with checkable answers: every prompt asks for a form (one word, at most N words,
# N bullets, a given opening, yes/no first) AND has an answer that can be checked (eval/checks.py)
# ---------------------------------------------------------------------------
# (question, accepted answers); the first accepted answer is the one the reference gives.  No accepted answer may
# occur in its question (an echo of the prompt would pass), which the script asserts.
WORD_FACTS = [
    ("What is the capital of France?", ["Paris"]), ("What's the capital of Japan?", ["Tokyo"]),
    ("What's the capital of Canada?", ["Ottawa"]), ("What's the capital of Italy?", ["Rome"]),
    ("What is the capital of Australia?", ["Canberra"]), ("What is the capital of Spain?", ["Madrid"]),
    ("What is the capital of Germany?", ["Berlin"]), ("What is the capital of Egypt?", ["Cairo"]),
    ("What is the capital of Kenya?", ["Nairobi"]), ("What is the capital of Norway?", ["Oslo"]),
    ("What is the capital of Peru?", ["Lima"]), ("What is the capital of Greece?", ["Athens"]),
    ("What is the capital of Portugal?", ["Lisbon"]), ("What is the capital of Ireland?", ["Dublin"]),
    ("What is the capital of Argentina?", ["Buenos Aires"]), ("What is the capital of South Korea?", ["Seoul"]),
    ("What is the capital of Thailand?", ["Bangkok"]), ("What is the capital of Russia?", ["Moscow"]),
    ("What is the capital of Poland?", ["Warsaw"]), ("What is the capital of Austria?", ["Vienna"]),
    ("What is the capital of Sweden?", ["Stockholm"]), ("What is the capital of the Netherlands?", ["Amsterdam"]),
    ("What is the capital of Turkey?", ["Ankara"]), ("What is the capital of Cuba?", ["Havana"]),
    ("What is the capital of China?", ["Beijing", "Peking"]), ("What is the capital of India?", ["New Delhi", "Delhi"]),
    ("What is the capital of Brazil?", ["Brasilia"]),
    ("Which planet is known as the Red Planet?", ["Mars"]), ("What is the largest ocean on Earth?", ["Pacific"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "CO2"]),
    ("What animal is known as the king of the jungle?", ["lion"]),
    ("Which organ pumps blood through the body?", ["heart"]), ("What do bees make?", ["honey"]),
    ("What is the chemical symbol for gold?", ["Au"]),
    ("What language is mainly spoken in Brazil?", ["Portuguese"]),
    ("What's the main ingredient in guacamole?", ["avocado"]), ("Which instrument has 88 keys?", ["piano"]),
    ("What do caterpillars turn into?", ["butterfly", "butterflies", "moth"]),
    ("What is the hardest natural substance?", ["diamond"]),
    ("Which metal is liquid at room temperature?", ["mercury"]), ("Which continent is Egypt in?", ["Africa"]),
    ("What's a baby cat called?", ["kitten"]),
    ("What do you call a word that means the same as another word?", ["synonym"]),
    ("What sport is played at Wimbledon?", ["tennis"]), ("What is the tallest animal in the world?", ["giraffe"]),
    ("Which month has the fewest days?", ["February"]), ("What shape has three sides?", ["triangle"]),
    ("What's the opposite of 'ancient'?", ["modern", "new", "recent", "contemporary"]),
    ("What fruit is dried to make raisins?", ["grape"]),
    ("Which bird is often used as a symbol of peace?", ["dove"]),
    ("What do you call a scientist who studies rocks?", ["geologist"]),
    ("What is the main ingredient in hummus?", ["chickpea", "garbanzo"]),
    ("What's the largest planet in our solar system?", ["Jupiter"]), ("What do giant pandas mostly eat?", ["bamboo"]),
    ("What is the currency of Japan?", ["yen"]), ("Which gas do humans need to breathe?", ["oxygen"]),
    ("What's the first letter of the Greek alphabet?", ["alpha"]), ("What is frozen water called?", ["ice"]),
    ("In which season do most trees lose their leaves?", ["autumn", "fall"]),
    ("What do you call a baby dog?", ["puppy", "puppies", "pup"]),
    ("What is the opposite of 'visible'?", ["invisible", "hidden", "unseen"]),
    ("What color are most school buses in the United States?", ["yellow"]),
    ("What do you call a shape with eight sides?", ["octagon"]),
    ("What's the main language spoken in Mexico?", ["Spanish"]),
    ("Which vitamin does sunlight help the body make?", ["vitamin D"]),
    ("What does a thermometer measure?", ["temperature"]),
    ("What do you call the person who leads an orchestra?", ["conductor"]),
    ("Which organs do humans use to breathe?", ["lungs"]),
    ("What color do you get by mixing blue and yellow?", ["green"]),
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]), ("Who painted the Mona Lisa?", ["Leonardo", "da Vinci"]),
    ("Who developed the theory of relativity?", ["Einstein"]),
    ("Who was the first person to walk on the moon?", ["Armstrong"]),
    ("What is the longest river in Africa?", ["Nile"]), ("What is the tallest mountain in the world?", ["Everest"]),
    ("What is the chemical symbol for sodium?", ["Na"]), ("What is the chemical symbol for iron?", ["Fe"]),
    ("What is H2O more commonly called?", ["water"]),
    ("What part of the cell is often called its powerhouse?", ["mitochondria", "mitochondrion"]),
    ("What force keeps us on the ground?", ["gravity", "gravitation"]),
    ("Which country gave the Statue of Liberty to the United States?", ["France"]),
    ("In which country are the pyramids of Giza?", ["Egypt"]),
    ("Which ocean lies between Africa and Australia?", ["Indian"]),
    ("What is the largest country by area?", ["Russia"]),
    ("What's the name of the galaxy we live in?", ["Milky Way"]),
    ("What is the hottest planet in our solar system?", ["Venus"]),
    ("What is the largest organ of the human body?", ["skin"]),
    ("Which metal has the chemical symbol Ag?", ["silver"]),
    ("What do you call an animal that eats only plants?", ["herbivore"]),
    ("What do you call a young frog?", ["tadpole", "polliwog", "froglet"]),
    ("Which planet is famous for its bright rings?", ["Saturn"]),
    ("What is the most common gas in Earth's atmosphere?", ["nitrogen"]),
    ("What is the study of living things called?", ["biology"]),
    ("What instrument do astronomers use to look at distant stars?", ["telescope"]),
    ("Which bone protects the brain?", ["skull", "cranium"]),
    ("What is molten rock called once it has erupted from a volcano?", ["lava"]),
    ("What do you call a group of wolves?", ["pack"]),
    ("What is the largest bone in the human body?", ["femur", "thighbone", "thigh bone"]),
    ("What is a baby sheep called?", ["lamb"]), ("What is a baby cow called?", ["calf"]),
    ("What is a baby horse called?", ["foal", "colt", "filly"]),
    ("Which sense do we use our nose for?", ["smell"]), ("What is the plural of 'mouse'?", ["mice"]),
    ("What is the past tense of 'go'?", ["went"]), ("Which country is home to the kangaroo?", ["Australia"]),
    ("What is the largest hot desert in the world?", ["Sahara"]),
    ("Which city is known as the Big Apple?", ["New York", "NYC"]),
]
# (question, count); the count is never written in its question
COUNT_FACTS = [
    ("How many legs does a spider have?", 8), ("How many legs does an insect have?", 6),
    ("How many sides does a hexagon have?", 6), ("How many continents are there?", 7),
    ("How many planets are in our solar system?", 8),
    ("How many players does a soccer team have on the field at once?", 11),
    ("How many strings does a standard violin have?", 4), ("How many hearts does an octopus have?", 3),
    ("How many days are in a leap year?", 366), ("How many bones are in the adult human body?", 206),
    ("How many teeth does an adult human usually have, wisdom teeth included?", 32),
    ("How many players from one team are on a basketball court?", 5),
    ("How many chambers does the human heart have?", 4), ("How many states are in the United States?", 50),
    ("How many strings does a standard guitar have?", 6), ("How many moons does Mars have?", 2),
    ("How many squares are on a chessboard?", 64), ("How many cards are in a standard deck, without jokers?", 52),
    ("How many months have 31 days?", 7), ("How many zeros are in a million?", 6),
    ("How many wheels does a tricycle have?", 3), ("How many sides does a pentagon have?", 5),
    ("How many weeks are in a year?", 52), ("How many events are in a decathlon?", 10),
    ("How many lines does a haiku have?", 3), ("How many lines does a sonnet have?", 14),
    ("How many pieces does each player start with in chess?", 16),
    ("How many arms does a starfish usually have?", 5), ("How many years are in a century?", 100),
    ("How many letters are in the English alphabet?", 26), ("How many degrees are in a right angle?", 90),
    ("How many bits are in a byte?", 8), ("How many players from one team are on a volleyball court?", 6),
    ("How many days are in a fortnight?", 14), ("How many years are in a decade?", 10),
]
# (question, date as "--MM-DD" or "YYYY-MM-DD"); a year in the answer must be in the response
DATE_FACTS = [
    ("On what date is Christmas Day?", "--12-25"), ("On what date is Halloween?", "--10-31"),
    ("On what date is Valentine's Day?", "--02-14"), ("On what date is New Year's Day?", "--01-01"),
    ("On what date does the United States celebrate Independence Day?", "--07-04"),
    ("On what date is New Year's Eve?", "--12-31"), ("On what date is Saint Patrick's Day?", "--03-17"),
    ("On what date is International Women's Day?", "--03-08"),
    ("On what date is Bastille Day celebrated in France?", "--07-14"), ("On what date is Canada Day?", "--07-01"),
    ("On what date is Christmas Eve?", "--12-24"), ("On what date is Guy Fawkes Night in the UK?", "--11-05"),
    ("On what date is Earth Day?", "--04-22"), ("On what date is Boxing Day?", "--12-26"),
    ("On what date did the Berlin Wall fall? Give the full date.", "1989-11-09"),
    ("On what date was the US Declaration of Independence adopted? Give the full date.", "1776-07-04"),
    ("On what date did the armistice that ended the fighting of World War I take effect? Give the full date.",
     "1918-11-11"),
    ("On what date did the D-Day landings in Normandy take place? Give the full date.", "1944-06-06"),
    ("On what date was Pearl Harbor attacked? Give the full date.", "1941-12-07"),
]
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"]
MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
DATE_SHIFT_T = ["What date is {n} days after {d}?", "What is the date {n} days after {d}?",
                "If today is {d}, what will the date be in {n} days?", "What date was it {n} days before {d}?",
                "If today is {d}, what was the date {n} days ago?"]
MONTH_SHIFT_T = ["Which month comes {n} months after {m}?", "What month is {n} months after {m}?",
                 "Which month was it {n} months before {m}?", "If it is {m} now, what month will it be in {n} months?"]
# (what the list is of, its items; an item given as a list accepts any of its spellings)
BULLET_SETS = [
    ("primary colors in traditional painting", ["red", "yellow", "blue"]),
    ("primary colors of light", ["red", "green", "blue"]),
    ("classic states of matter", ["solid", "liquid", "gas"]),
    ("seasons of the year", ["spring", "summer", ["autumn", "fall"], "winter"]),
    ("cardinal directions on a compass", ["north", "south", "east", "west"]),
    ("branches of the US federal government", ["legislative", "executive", "judicial"]),
    ("Great Lakes of North America", ["Superior", "Michigan", "Huron", "Erie", "Ontario"]),
    ("traditional human senses", [["sight", "vision", "seeing"], ["hearing"], ["smell", "smelling"],
                                  ["taste", "tasting"], ["touch"]]),
    ("nucleotide bases in DNA", ["adenine", "thymine", "guanine", "cytosine"]),
    ("planets between the sun and the asteroid belt", ["Mercury", "Venus", "Earth", "Mars"]),
    ("oceans of the world", ["Pacific", "Atlantic", "Indian", "Arctic", ["Southern", "Antarctic"]]),
    ("countries that make up the United Kingdom", ["England", "Scotland", "Wales", "Northern Ireland"]),
    ("main types of rock in geology", ["igneous", "sedimentary", "metamorphic"]),
    ("colors of the rainbow", ["red", "orange", "yellow", "green", "blue", "indigo", "violet"]),
    ("days of the weekend", ["Saturday", "Sunday"]),
    ("chambers of the US Congress", ["Senate", "House"]),
    ("particles that make up an atom", ["proton", "neutron", "electron"]),
    ("suits in a standard deck of playing cards", ["heart", "diamond", "club", "spade"]),
    ("kinds of chess pieces", ["king", "queen", ["rook", "castle"], "bishop", "knight", "pawn"]),
    ("colors of the Olympic rings", ["blue", "yellow", "black", "green", "red"]),
    ("main layers of the Earth", ["crust", "mantle", "core"]),
    ("kinds of blood vessels in the human body", [["artery", "arteries"], "vein", ["capillary", "capillaries"]]),
    ("macronutrients in food", [["carbohydrate", "carbs"], "protein", "fat"]),
    ("Bronte sisters who wrote novels", ["Charlotte", "Emily", "Anne"]),
    ("members of the Beatles", [["Lennon", "John"], ["McCartney", "Paul"], ["Harrison", "George"],
                                ["Starr", "Ringo"]]),
    ("Teenage Mutant Ninja Turtles", ["Leonardo", "Michelangelo", "Donatello", "Raphael"]),
    ("Baltic states", ["Estonia", "Latvia", "Lithuania"]),
    ("Benelux countries", ["Belgium", ["Netherlands", "Holland"], "Luxembourg"]),
    ("boroughs of New York City", ["Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island"]),
    ("classical elements of ancient Greek philosophy", ["earth", "water", "air", "fire"]),
    ("houses of Hogwarts in the Harry Potter books", ["Gryffindor", "Hufflepuff", "Ravenclaw", "Slytherin"]),
    ("Abrahamic religions", ["Judaism", "Christianity", "Islam"]),
    ("countries that share a land border with the contiguous United States", ["Canada", "Mexico"]),
    ("official languages of Canada", ["English", "French"]),
    ("R's of waste reduction", ["reduce", "reuse", "recycle"]),
    ("main Axis powers of World War II", ["Germany", "Italy", "Japan"]),
    ("basic tastes the human tongue detects", ["sweet", "sour", "salty", "bitter", "umami"]),
    ("Gospels of the New Testament", ["Matthew", "Mark", "Luke", "John"]),
    ("Scandinavian countries", ["Denmark", "Norway", "Sweden"]),
    ("phases of mitosis", ["prophase", "metaphase", "anaphase", "telophase"]),
    ("Musketeers in Dumas's novel", ["Athos", "Porthos", "Aramis"]),
    ("US states that border Mexico", ["California", "Arizona", "New Mexico", "Texas"]),
    ("noble gases in the first three rows of the periodic table", ["helium", "neon", "argon"]),
]
YES_NO_QUESTIONS = [  # (question, answer); as many of each answer
    ("Do penguins live in the Southern Hemisphere?", "yes"), ("Can penguins fly?", "no"),
    ("Is Python a programming language?", "yes"), ("Do snakes have eyelids?", "no"),
    ("Can you overwater a cactus?", "yes"), ("Is it safe to leave cooked rice out overnight?", "no"),
    ("Do all birds lay eggs?", "yes"), ("Does the moon produce its own light?", "no"),
    ("Is 17 a prime number?", "yes"), ("Is Sydney the capital of Australia?", "no"),
    ("Is zero an even number?", "yes"), ("Is a whale a fish?", "no"),
    ("Do plants need sunlight to make their food?", "yes"), ("Should I water succulents every day?", "no"),
    ("Is the sun a star?", "yes"), ("Is glass a good conductor of electricity?", "no"),
    ("Does sound travel faster in water than in air?", "yes"), ("Can dogs safely eat chocolate?", "no"),
    ("Is Mount Everest the tallest mountain above sea level?", "yes"), ("Is a peanut a true nut?", "no"),
    ("Do koalas eat eucalyptus leaves?", "yes"), ("Is honey safe for babies under one year old?", "no"),
    ("Can lightning strike the same place twice?", "yes"), ("Are bats blind?", "no"),
    ("Is a bat a mammal?", "yes"), ("Is Pluto still classified as a major planet?", "no"),
    ("Is the human heart a muscle?", "yes"), ("Can humans breathe on Mars without equipment?", "no"),
    ("Does ice float in water?", "yes"), ("Is 1 a prime number?", "no"),
    ("Is table salt a chemical compound?", "yes"), ("Is a koala a bear?", "no"),
    ("Is a square a rectangle?", "yes"), ("Can cats see in complete darkness?", "no"),
    ("Is a 401(k) a retirement account?", "yes"), ("Are all wild mushrooms safe to eat?", "no"),
    ("Is a year on Mars longer than a year on Earth?", "yes"),
    ("Is the Great Wall of China visible from space with the naked eye?", "no"),
    ("Does the Earth orbit the sun?", "yes"), ("Is 21 a prime number?", "no"),
    ("Is a marathon longer than 40 kilometers?", "yes"), ("Is Antarctica a country?", "no"),
    ("Can you freeze bread?", "yes"), ("Is a spider an insect?", "no"),
    ("Are tomatoes and potatoes in the same plant family?", "yes"), ("Is the moon larger than the Earth?", "no"),
    ("Is a tomato a fruit in botanical terms?", "yes"), ("Is the Sahara in South America?", "no"),
    ("Is a dolphin a mammal?", "yes"), ("Is iron a gas at room temperature?", "no"),
    ("Is gold a metal?", "yes"), ("Is 15 an even number?", "no"),
    ("Is 81 a perfect square?", "yes"), ("Is the sun a planet?", "no"),
    ("Is a mile longer than a kilometer?", "yes"), ("Is a shark a mammal?", "no"),
    ("Is the Amazon rainforest in South America?", "yes"), ("Can an ostrich fly?", "no"),
    ("Is 100 divisible by 4?", "yes"), ("Is Berlin the capital of Austria?", "no"),
    ("Is steel an alloy?", "yes"), ("Does water boil at 50 degrees Celsius at sea level?", "no"),
]
ONE_WORD_T = ["Answer in one word: {q}", "{q} One word only.", "{q} Reply with a single word.",
              "One-word answer, please: {q}", "{q} Just give me one word, no explanation.",
              "Using exactly one word, answer this: {q}"]
MAX_WORDS_T = ["In at most {n} words, answer this: {q}", "{q} Answer in {n} words or fewer.",
               "Using no more than {n} words: {q}", "{q} Keep your answer to {n} words max.",
               "Answer briefly, {n} words at most. {q}"]
STARTERS = ["Sure", "In short", "Great question", "To be honest", "Here's the thing", "Well", "Good question",
            "Happy to help", "Short answer", "Okay"]
STARTS_WITH_T = ["Start your answer with \"{s}\", then answer this: {q}", "Begin your reply with \"{s}\". {q}",
                 "{q} Open your answer with the words \"{s}\".", "{q} The first words of your reply must be \"{s}\"."]
YES_NO_T = ["Answer yes or no: {q}", "{q} Just yes or no, please.", "Reply with yes or no: {q}",
            "{q} Start with yes or no, then give one sentence of explanation.", "Quick yes/no question: {q}",
            "{q} Please answer yes or no first.", "I only need a yes or no. {q}",
            "{q} Begin your answer with \"Yes\" or \"No\".", "{q} Answer yes or no, in {n} words or fewer."]
BULLET_T = ["List exactly {nw} {x} as bullet points.", "Name the {nw} {x}, one per bullet point, and nothing else.",
            "Give me the {x} as a bulleted list of exactly {n} items.",
            "What are the {nw} {x}? Answer with {nw} bullet points.",
            "I need the {x} for a slide: exactly {nw} bullets, one name each."]


def _with_given(content: dict, prompt: str) -> dict:
    """A count check skips the numbers its prompt states, such as a word limit (eval/checks.py: given)."""
    given = [json_num(g) for g in checks.find_numbers(prompt) if g != content.get("answer")]
    return {**content, "given": given} if content["kind"] == "count" and given else content


def _forms(rng: random.Random, group: str, q: str, content: dict, shown: str, one_word: bool, rotate: int,
           answer: str, bucket: str) -> list[Item]:
    """The one-word, max-words and starts-with versions of a question; the group's first item (the one a
    held-out or validation split takes) rotates through the forms."""
    n = rng.choice([k for k in (5, 6, 8, 10, 12, 15) if k != content.get("answer")])
    s = rng.choice(STARTERS)
    forms = [
        ({"kind": "max_words", "count": n}, rng.choice(MAX_WORDS_T).format(n=n, q=q), f"{cap(shown)}."),
        ({"kind": "starts_with", "text": s}, rng.choice(STARTS_WITH_T).format(s=s, q=q), f"{s}, {shown}."),
    ]
    if one_word:
        forms.insert(0, ({"kind": "one_word"}, rng.choice(ONE_WORD_T).format(q=q), f"{cap(shown)}."))
    forms = forms[rotate % len(forms):] + forms[:rotate % len(forms)]
    return [Item(group, p, [form, _with_given(content, p)], ref, answer, f"{bucket}:{form['kind']}")
            for form, p, ref in forms]


def _date_text(date: str) -> str:
    month, day = int(date[-5:-3]), int(date[-2:])
    return f"{MONTH_NAMES[month - 1]} {day}" + ("" if date.startswith("--") else f", {date[:4]}")


def _shifted_dates(rng: random.Random):
    """(group, question, answer, start) for date arithmetic that stays within March..December, so that no leap day
    is crossed and no year boundary either."""
    out = []
    while len(out) < 40:
        month, day, n = rng.randint(4, 10), rng.randint(1, 28), rng.randint(3, 40)
        tpl = rng.choice(DATE_SHIFT_T)
        shift = -n if ("before" in tpl or "ago" in tpl) else n
        ordinal = sum(MONTH_DAYS[:month - 1]) + day + shift
        if ordinal <= sum(MONTH_DAYS[:2]):
            continue
        m2 = next(i for i in range(12) if ordinal <= sum(MONTH_DAYS[:i + 1]))
        d2 = ordinal - sum(MONTH_DAYS[:m2])
        start = f"--{month:02d}-{day:02d}"
        question = tpl.format(n=n, d=f"{MONTH_NAMES[month - 1]} {day}")
        out.append((f"shift:{start}{shift:+d}", question, f"--{m2 + 1:02d}-{d2:02d}", start))
    return out


def _word_items(rng: random.Random) -> list[Item]:
    items = []
    for i, (q, accepted) in enumerate(WORD_FACTS):
        content = {"kind": "word", "accepted": accepted}
        one_word = len(checks.words(accepted[0])) == 1
        items += _forms(rng, f"fact:{q}", q, content, accepted[0], one_word, i,
                        f"word:{checks.normalise(accepted[0])}", "word")
    for i, (q, n) in enumerate(COUNT_FACTS):
        items += _forms(rng, f"count:{q}", q, {"kind": "count", "answer": n}, str(n), True, i, f"num:{n}", "count")
    for i, (q, date) in enumerate(DATE_FACTS):
        content = {"kind": "date", "answer": date}
        items += _forms(rng, f"date:{q}", q, content, _date_text(date), False, i, f"date:{date[-5:]}", "date")
    for i, (group, q, date, start) in enumerate(_shifted_dates(rng)):
        content = {"kind": "date", "answer": date, "given": [start]}
        items += _forms(rng, group, q, content, _date_text(date), False, i, f"date:{date[-5:]}", "date")
    return items


def _month_items(rng: random.Random) -> list[Item]:
    items = []
    for _ in range(40):
        m, n = rng.randrange(12), rng.randint(2, 11)
        tpl = rng.choice(MONTH_SHIFT_T)
        shift = -n if "before" in tpl else n
        target = MONTH_NAMES[(m + shift) % 12]
        q = tpl.format(n=NUM_WORDS[n], m=MONTH_NAMES[m])
        accepted = [target] + ([target[:3]] if len(target) > 4 else [])
        for t in rng.sample(ONE_WORD_T, 2):
            check = [{"kind": "one_word"}, {"kind": "word", "accepted": accepted}]
            items.append(Item(f"month:{m}{shift:+d}", t.format(q=q), check, f"{target}.", f"word:{target.lower()}",
                              "month"))
    return items


def _yes_no_items(rng: random.Random) -> list[Item]:
    items = []
    for q, answer in YES_NO_QUESTIONS:
        for tpl in rng.sample(YES_NO_T, 2):
            n = rng.choice([8, 10, 12, 15])
            check = [{"kind": "yes_no", "answer": answer}]
            if "{n}" in tpl:
                check.append({"kind": "max_words", "count": n})
            items.append(Item(f"yn:{q}", tpl.format(q=q, n=n), check, f"{cap(answer)}.", f"yn:{answer}", "yes_no"))
    return items


def _bullet_items(rng: random.Random) -> list[Item]:
    items = []
    for x, required in BULLET_SETS:
        k = len(required)
        reference = "\n".join(f"- {cap(item if isinstance(item, str) else item[0])}" for item in required)
        for tpl in rng.sample(BULLET_T, 2):
            check = [{"kind": "bullets", "count": k}, {"kind": "all_words", "items": required}]
            items.append(Item(f"set:{x}", tpl.format(n=k, nw=NUM_WORDS[k], x=x), check, reference, f"set:{x}",
                              "bullets"))
    return items


def gen_format(rng: random.Random):
    return _word_items(rng) + _month_items(rng) + _yes_no_items(rng) + _bullet_items(rng)


# ---------------------------------------------------------------------------
# validation-only topics, for the categories whose every group is already used by train or held-out; each
# category draws them with its own RNG, so its train and held-out prompts stay as they were
# ---------------------------------------------------------------------------
INFORMAL_V = ["yo, the wifi's down again, can someone reboot the router?", "gonna need those slides before lunch, thx",
              "sorry, totally forgot about our call, can we redo it tomorrow?"]
FORMAL_V = ["Residents are kindly requested to refrain from parking on the lawn adjacent to the building.",
            "The aforementioned invoice remains outstanding and requires settlement at your earliest convenience."]
ERRORS_V = ["Me and Sarah was at the library all afternoon.", "Their are too many cars parked on our street.",
            "The group of volunteers have went home early."]
WORDY_V = ["In spite of the fact that the weather was bad, the event went ahead exactly as it had been planned.",
           "I am writing this email in order to let you know that I will not be able to attend the meeting."]
PARAGRAPHS_V = [
    ("a science blog", "Lightning forms when ice crystals and small hailstones collide inside a storm cloud and "
     "separate electric charge. The top of the cloud usually becomes positively charged and the bottom negatively "
     "charged. When the difference grows large enough, the air can no longer hold it back, and a giant spark jumps "
     "within the cloud or down to the ground. The air around the spark is heated in an instant to temperatures "
     "hotter than the surface of the sun, and its explosive expansion is what we hear as thunder."),
    ("a history book", "The Great Fire of London began in September 1666 in a bakery on Pudding Lane. Fanned by "
     "strong winds, it spread quickly through streets of closely packed wooden houses. Over four days it destroyed "
     "more than thirteen thousand homes and the old St Paul's Cathedral, although the number of recorded deaths "
     "was surprisingly small. Afterwards the city was rebuilt with wider streets and buildings of brick and stone, "
     "and a tall monument was raised near the spot where the fire had started."),
]
LIST_SUBJECTS_V = [
    "ways to stay cool in a heat wave without air conditioning", "ideas for an indoor picnic on a rainy day",
    "things to bring to a job fair", "ways to make a long commute more enjoyable",
    "houseplants that cope with a north-facing window", "snacks that travel well on a hike",
    "questions to ask before joining a gym", "ways to welcome a new neighbor",
]
PAIRS_V = [
    ("a kayak", "a canoe", "for a calm lake", True),
    ("a slow cooker", "a pressure cooker", "for busy weeknights", True),
    ("hail", "sleet", "", False), ("a pharmacist", "a pharmacy technician", "", False),
    ("a scooter", "a bicycle", "for a short commute", True), ("a fern", "a moss", "", False),
    ("a library card", "an audiobook subscription", "for someone who listens to a book a week", True),
    ("a convection oven", "a regular oven", "", False),
]


def extra_rewriting(rng: random.Random):
    families = [(INFORMAL_V, REW_INFORMAL), (FORMAL_V, REW_FORMAL), (ERRORS_V, REW_ERRORS), (WORDY_V, REW_WORDY)]
    return [(s, rng.choice(templates).format(s=s)) for sentences, templates in families for s in sentences]


def extra_summarising(rng: random.Random):
    return [(f"paragraph-v{i}", tpl.format(p=p, src=src)) for i, (src, p) in enumerate(PARAGRAPHS_V)
            for tpl in rng.sample(SUMMARY_TEMPLATES, 5)]


def extra_lists(rng: random.Random):
    items = []
    for x in LIST_SUBJECTS_V:
        k = rng.choice([3, 4, 5, 6, 7])
        n = NUM_WORDS[k] if rng.random() < 0.6 else str(k)
        items.append((x, rng.choice(LIST_TEMPLATES).format(x=x, n=n)))
    return items


def extra_comparisons(rng: random.Random):
    items = []
    for a, b, ctx, choice in PAIRS_V:
        tpl = rng.choice(COMPARE_ANY + (COMPARE_CHOICE if choice else COMPARE_CONCEPT))
        c = f" {ctx}" if ctx else ""
        items.append((f"{a}|{b}", tpl.format(a=a, b=b, A=cap(a), ctx=c, persona=rng.choice(PERSONAS))))
    return items


VALIDATION_EXTRAS = {"rewriting": extra_rewriting, "summarising": extra_summarising, "lists": extra_lists,
                     "comparisons": extra_comparisons}


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------
GENERATORS = {
    "explanation": gen_explanation,
    "howto": gen_howto,
    "writing": gen_writing,
    "rewriting": gen_rewriting,
    "summarising": gen_summarising,
    "lists": gen_lists,
    "comparisons": gen_comparisons,
    "reasoning": gen_reasoning,
    "arithmetic": gen_arithmetic,
    "unit_conversion": gen_unit_conversion,
    "format": gen_format,
}


def _group(items: list[Item], seen: set) -> dict[str, list[Item]]:
    """Items by group, dropping prompts already seen in any category."""
    groups: dict[str, list[Item]] = {}
    for it in items:
        h = content_hash(it.prompt)
        if h in seen:
            continue
        seen.add(h)
        groups.setdefault(it.group, []).append(it)
    return groups


def _pick(keys: list[str], groups: dict, quota: int, per_group: int, split: str, category: str,
          answers: Counter) -> list[str]:
    """Groups for the held-out or validation split, in ``keys`` order, until ``quota`` prompts: at most
    ANSWER_CAP prompts of the split per answer (``answers`` counts them across categories; yes/no: half the
    yes/no quota each) and, for format, the FORMAT_QUOTAS mix."""
    quotas = {b: q[split == "heldout"] for b, q in FORMAT_QUOTAS.items()} if category == "format" else None
    taken, n, buckets = [], 0, Counter()
    for k in keys:
        if n >= quota:
            break
        first = groups[k][0]
        if quotas is not None and buckets[first.bucket] >= quotas[first.bucket]:
            continue
        limit = quotas["yes_no"] // 2 if first.bucket == "yes_no" else ANSWER_CAP[split]
        if first.answer and answers[first.answer] >= limit:
            continue
        taken.append(k)
        n += len(groups[k][:per_group])
        answers[first.answer] += 1
        buckets[first.bucket] += 1
    return taken


def split_category(category: str, items: list[Item], extras: list[Item], seen: set, rng: random.Random,
                   answers: dict[str, Counter]):
    """Group-disjoint split into (train, validation, heldout) lists of Items.  Held-out takes the first groups
    of a shuffle and train the rest, as before validation existed; validation takes the groups neither uses,
    then ``extras`` (topics written for validation only)."""
    n_train, n_val, n_held, per_group = TARGETS[category]
    groups = _group(items, seen)
    keys = list(groups)
    rng.shuffle(keys)
    held_keys = _pick(keys, groups, n_held, per_group, "heldout", category, answers["heldout"])
    held_set = set(held_keys)
    held = [it for k in held_keys for it in groups[k][:per_group]][:n_held]
    train = [it for k in keys if k not in held_set for it in groups[k]]
    rng.shuffle(train)
    train = train[:n_train]
    used = held_set | {it.group for it in train}
    extra_groups = _group(extras, seen)
    assert not set(extra_groups) & set(groups), f"{category}: a validation-only topic is also a regular one"
    pool = {**{k: groups[k] for k in keys if k not in used}, **extra_groups}
    val_keys = _pick(list(pool), pool, n_val, per_group, "validation", category, answers["validation"])
    val = [it for k in val_keys for it in pool[k][:per_group]]
    val = val[:n_val]
    if len(held) < n_held or len(train) < n_train or len(val) < n_val:
        raise SystemExit(f"{category}: not enough prompts (train {len(train)}/{n_train}, "
                         f"validation {len(val)}/{n_val}, heldout {len(held)}/{n_held})")
    return train, val, held


def build():
    """{split: rows} and {split: {(category, group)}}."""
    seen: set[str] = set()
    out: dict[str, list] = {s: [] for s in SPLITS}
    groups: dict[str, set] = {s: set() for s in SPLITS}
    answers = {s: Counter() for s in SPLITS}
    for category, gen in GENERATORS.items():
        rng = random.Random(f"{SEED}:{category}")
        items = [it if isinstance(it, Item) else Item(*it) for it in gen(rng)]
        extra = VALIDATION_EXTRAS.get(category)
        extras = [Item(*it) for it in extra(random.Random(f"{SEED}:{category}:validation"))] if extra else []
        for split, rows in zip(SPLITS, split_category(category, items, extras, seen, rng, answers)):
            for i, it in enumerate(rows, 1):
                rec = {"id": f"{category}-{split}-{i:04d}", "category": category, "prompt": it.prompt}
                if it.check is not None:
                    rec["check"] = it.check
                    rec["reference"] = it.reference
                out[split].append(rec)
                groups[split].add((category, it.group))
    # Interleave categories so that any prefix of a file (generate.max_prompts, eval.max_prompts) covers them all.
    for split, rows in out.items():
        random.Random(f"{SEED}:order:{split}").shuffle(rows)
    return out, groups


def answer_share_problems(rows: list[dict], share: float) -> list[str]:
    """Answer texts (each reference, and "Yes.", "No.", "Paris") right for more than ``share`` of checkable rows."""
    checked = [r for r in rows if "check" in r]
    limit = int(share * len(checked))
    problems = []
    for text in dict.fromkeys([r["reference"] for r in checked] + ["Yes.", "No.", "Paris"]):
        hits = sum(checks.score(r["check"], text) for r in checked)
        if hits > limit:
            problems.append(f"{text!r} is right for {hits} of {len(checked)} checkable prompts (limit {limit})")
    return problems


def assert_corpus(data: dict, groups: dict) -> None:
    for split, rows in data.items():
        hs = [content_hash(r["prompt"]) for r in rows]
        assert len(hs) == len(set(hs)), f"duplicate prompts within {split}"
        assert len({r["id"] for r in rows}) == len(rows), f"duplicate ids within {split}"
        for r in rows:
            if r["category"] in CHECKABLE:
                checks.validate_check(r["check"])
                assert checks.score(r["check"], r["reference"]), f"{r['id']}: reference fails its check"
                assert not echo_passes(Item("", r["prompt"], r["check"])), f"{r['id']}: the prompt passes its check"
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not {content_hash(r["prompt"]) for r in data[a]} & {content_hash(r["prompt"]) for r in data[b]}, \
                f"{a} and {b} share a prompt"
            assert not groups[a] & groups[b], f"{a} and {b} share a topic group"
    assert len(data["train"]) >= 1400 and len(data["heldout"]) >= 300 and len(data["validation"]) >= 100
    assert sum("check" in r for r in data["heldout"]) >= 100
    assert {r["category"] for r in data["validation"]} == set(GENERATORS)
    for split, share in MAX_ANSWER_SHARE.items():
        problems = answer_share_problems(data[split], share)
        assert not problems, f"{split}: " + "; ".join(problems)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="output directory (default: the prompts/ directory)")
    args = ap.parse_args(argv)
    data, groups = build()
    assert_corpus(data, groups)

    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in data.items():
        with open(args.out / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    print(f"{'category':<16} {'train':>6} {'validation':>11} {'heldout':>8}")
    for category in GENERATORS:
        counts = [sum(1 for r in data[s] if r["category"] == category) for s in SPLITS]
        print(f"{category:<16} {counts[0]:>6} {counts[1]:>11} {counts[2]:>8}")
    print(f"{'total':<16} {len(data['train']):>6} {len(data['validation']):>11} {len(data['heldout']):>8}")
    checkable = [sum("check" in r for r in data[s]) for s in SPLITS]
    print(f"{'checkable':<16} {checkable[0]:>6} {checkable[1]:>11} {checkable[2]:>8}")
    print("wrote " + ", ".join(str(args.out / f"{s}.jsonl") for s in SPLITS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
