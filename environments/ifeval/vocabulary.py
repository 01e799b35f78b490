"""Word lists the procedural generators draw kwargs from (our own lists, plain English)."""

from __future__ import annotations

# Common concrete and abstract nouns: keywords to include, forbid, count or place.
KEYWORDS = tuple("""
anchor apple bridge candle canyon castle cloud compass copper cotton crystal desert diamond engine feather
festival forest fountain garden glacier granite harbor harvest island journey kettle ladder lantern
library lighthouse marble meadow mirror monsoon mountain network notebook ocean orchard painter pebble
pepper planet pocket rainbow ribbon river rocket saddle satellite season shadow signal silver
sparrow spice station storm summit teacher thunder ticket timber tower trumpet tunnel valley velvet village
violin voyage whistle window winter workshop
""".split())

# Letters in none of the KEYWORDS: "fewer than N of them" stays satisfiable alongside any keyword constraint.
RARE_LETTERS = "qxz"
COMMON_LETTERS = "aeionrstlh"

END_PHRASES = (
    "Any other questions?",
    "Is there anything else I can help with?",
    "Let me know if you have additional questions.",
    "That is all for now.",
    "Thank you for reading.",
    "Hope this helps.",
)

# IFEval's languages (ISO 639-1 → English name).
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
    "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
    "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean",
    "pl": "Polish", "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili",
    "kn": "Kannada", "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
}

# Short phrases for "repeat this phrase, changing one middle word" (copy:repeat_phrase).
PHRASES = (
    "The early bird catches the worm",
    "Actions speak louder than words",
    "A journey of a thousand miles begins with one step",
    "Every cloud has a silver lining",
    "Knowledge is power and patience is key",
    "The pen is mightier than the sword",
)

# Person names for count:person_names (IFBench's task names them in the instruction).
PERSON_NAMES = (
    "Emma", "Liam", "Sophia", "Jackson", "Olivia", "Noah", "Ava", "Lucas", "Isabella", "Mason", "Mia", "Ethan",
    "Charlotte", "Alexander", "Amelia", "Benjamin", "Harper", "Leo", "Zoe", "Daniel", "Chloe", "Samuel", "Lily",
    "Matthew", "Grace", "Owen", "Abigail", "Gabriel", "Ella", "Jacob", "Scarlett", "Nathan", "Victoria", "Elijah",
    "Layla", "Nicholas", "Audrey", "David", "Hannah", "Christopher", "Penelope", "Thomas", "Nora", "Andrew",
    "Aria", "Joseph", "Claire", "Ryan", "Stella", "Jonathan",
)
