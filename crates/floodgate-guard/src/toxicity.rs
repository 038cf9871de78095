//! Moderation rules: lexicon and phrase patterns scored per category, with the category
//! names of OpenAI's moderation API so `/v1/moderations` can return them unchanged.
//!
//! What this layer can and cannot do: it catches explicit cases (slurs, a protected
//! group named next to a dehumanising word, first-person threats, requests for
//! weapon or drug recipes, stated self-harm intent). It cannot see implicit,
//! stereotype-by-implication hate (most of ToxiGen); that is the embedding
//! classifier's job. Weights are therefore kept high only where a phrase is
//! unambiguous, and topic mentions (a clinical question about suicide) stay low.
//!
//! Within a category, matches combine as a noisy-OR; a subcategory's score also lifts
//! its parent (`hate/threatening` implies `hate`), as in OpenAI's taxonomy.

use regex::{RegexSet, RegexSetBuilder};

use crate::error::GuardError;
use crate::normalize::Normalized;

/// A moderation category, named as in OpenAI's moderation API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `harassment`
    Harassment,
    /// `harassment/threatening`
    HarassmentThreatening,
    /// `hate`
    Hate,
    /// `hate/threatening`
    HateThreatening,
    /// `self-harm`
    SelfHarm,
    /// `self-harm/intent`
    SelfHarmIntent,
    /// `self-harm/instructions`
    SelfHarmInstructions,
    /// `sexual`
    Sexual,
    /// `sexual/minors`
    SexualMinors,
    /// `violence`
    Violence,
    /// `violence/graphic`
    ViolenceGraphic,
    /// `illicit`
    Illicit,
    /// `illicit/violent`
    IllicitViolent,
}

impl Category {
    /// Every category, in OpenAI's order.
    pub const ALL: [Category; 13] = [
        Category::Harassment,
        Category::HarassmentThreatening,
        Category::Hate,
        Category::HateThreatening,
        Category::SelfHarm,
        Category::SelfHarmIntent,
        Category::SelfHarmInstructions,
        Category::Sexual,
        Category::SexualMinors,
        Category::Violence,
        Category::ViolenceGraphic,
        Category::Illicit,
        Category::IllicitViolent,
    ];

    /// The API name, e.g. `"harassment/threatening"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Harassment => "harassment",
            Category::HarassmentThreatening => "harassment/threatening",
            Category::Hate => "hate",
            Category::HateThreatening => "hate/threatening",
            Category::SelfHarm => "self-harm",
            Category::SelfHarmIntent => "self-harm/intent",
            Category::SelfHarmInstructions => "self-harm/instructions",
            Category::Sexual => "sexual",
            Category::SexualMinors => "sexual/minors",
            Category::Violence => "violence",
            Category::ViolenceGraphic => "violence/graphic",
            Category::Illicit => "illicit",
            Category::IllicitViolent => "illicit/violent",
        }
    }

    /// The broader category a subcategory belongs to, if any.
    pub fn parent(self) -> Option<Category> {
        match self {
            Category::HarassmentThreatening => Some(Category::Harassment),
            Category::HateThreatening => Some(Category::Hate),
            Category::SelfHarmIntent | Category::SelfHarmInstructions => Some(Category::SelfHarm),
            Category::SexualMinors => Some(Category::Sexual),
            Category::ViolenceGraphic => Some(Category::Violence),
            Category::IllicitViolent => Some(Category::Illicit),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Per-category scores in [0, 1] and the rules that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicityScores {
    scores: [f32; 13],
    /// Names of the rules that fired.
    pub rules: Vec<&'static str>,
}

impl ToxicityScores {
    /// The score of one category.
    pub fn get(&self, category: Category) -> f32 {
        self.scores[category.index()]
    }

    /// Every category with its score, in OpenAI's order.
    pub fn iter(&self) -> impl Iterator<Item = (Category, f32)> + '_ {
        Category::ALL.iter().map(|c| (*c, self.scores[c.index()]))
    }

    /// The highest score of any category.
    pub fn max(&self) -> f32 {
        self.scores.iter().copied().fold(0.0, f32::max)
    }

    /// The categories at or above `threshold`.
    pub fn flagged(&self, threshold: f32) -> Vec<Category> {
        self.iter()
            .filter(|(_, s)| *s >= threshold)
            .map(|(c, _)| c)
            .collect()
    }
}

const GROUP: &str = r"(?:jews?|jewish\s+(?:people|race|community)|muslims?|islam|arabs?|black\s+people|blacks|blackskins|africans?|asians?|chinese(?:\s+people)?|mexicans?|latinos?|latinas?|hispanics?|immigrants?|migrants|refugees|women|females|gays?|homosexuals?|lesbians?|trans\s+(?:women|men|people)|transgender\s+people|transsexuals?|disabled(?:\s+people)?|the\s+disabled|mentally\s+ill|natives|indians|hindus|christians|atheists|gypsies)";
const INSULT: &str = r"(?:idiots?|morons?|stupid|dumb|imbeciles?|retard(?:s|ed)?|bitch(?:es)?|bastards?|scum|parasites?|vermin|trash|garbage|pathetic|losers?|freaks?|sheep|snowflakes?|hypocrites?|sociopaths?|psychopaths?|traitors?|freeloaders?|lunatics?|delusional|brainwashed|worthless|disgusting|filthy|subhuman|animals|cockroaches|rats|pigs|apes|savages|thugs|rapists|criminals|terrorists|a\s+joke|a\s+drain|a\s+blight|a\s+plague|a\s+cancer|attention-?seekers|control\s+freaks|conspiracy\s+nuts?|liars|lying|greedy|evil|inferior|haters?|manipulators)";
const MINOR: &str = r"(?:child(?:ren)?|kids?|minors?|underage|preteens?|toddlers?|little\s+(?:girls?|boys?)|(?:[1-9]|1[0-7])[- ](?:year|yr)s?[- ]olds?|schoolgirls?|pedo\w*)";
const SEXUAL: &str = r"(?:sex(?:ual(?:ly)?|y)?|nudes?|naked|porn\w*|erotic\w*|molest\w*|intercourse|fondl\w*|aroused?|orgasm\w*)";
const ASK: &str = r"(?:how\s+(?:to|do\s+i|can\s+i|would\s+i|should\s+i)|help\s+me|teach\s+me|steps\s+to|guide\s+to|instructions\s+(?:for|to)|best\s+way\s+to|easiest\s+way\s+to|ways\s+to)";

/// `(name, category, weight, pattern)`; `{GROUP}`, `{INSULT}`, `{MINOR}`, `{SEXUAL}`
/// and `{ASK}` are replaced by the fragments above.
const RULES: &[(&str, Category, f32, &str)] = &[
    // hate
    (
        "slur",
        Category::Hate,
        0.9,
        r"\b(?:n[i1]gg(?:er|a)s?|f[a@]ggots?|k[i1]kes?|sp[i1]cs?|ch[i1]nks?|tr[a@]nn(?:y|ies)|wetbacks?|ragheads?|towelheads?)\b",
    ),
    (
        "group_dehumanised",
        Category::Hate,
        0.75,
        r"\b{GROUP}\b(?:\W+\w+){0,10}?\W+{INSULT}\b|\b{INSULT}\s+(?:\w+\s+)?{GROUP}\b",
    ),
    (
        "hate_speaker",
        Category::Hate,
        0.7,
        r"\b(?:i|we)\s+(?:hate|despise|loathe|can't\s+stand)\s+(?:all\s+)?{GROUP}\b",
    ),
    (
        "race_ranking",
        Category::Hate,
        0.7,
        r"\b(?:worst|inferior|superior|master|filthy)\s+race\b",
    ),
    (
        "group_lacks_humanity",
        Category::Hate,
        0.6,
        r"\b{GROUP}\s+(?:have|has)\s+no\s+(?:morals|soul|souls|brains|culture|values|dignity|shame|humanity)\b",
    ),
    (
        "deny_rights",
        Category::Hate,
        0.6,
        r"\b(?:{GROUP}|disabilit(?:y|ies)|mental\s+illness)\b.{0,60}?\bshould\s+(?:not|never)\s+(?:be\s+allowed\s+to\s+)?(?:have\s+children|marry|vote|own\s+\w+|work|exist|breed|reproduce)\b",
    ),
    (
        "group_unfit",
        Category::Hate,
        0.55,
        r"\b{GROUP}\b.{0,60}?\b(?:are|is)\s+not\s+(?:fit|capable|smart\s+enough|intelligent\s+enough|suited)\s+(?:to|for)\b|\bwaste\s+of\s+(?:\w+\s+){0,4}?(?:time|money|resources|space|oxygen)\b.{0,40}?\b{GROUP}\b",
    ),
    (
        "illegal_group",
        Category::Hate,
        0.6,
        r"\billegal\s+(?:mexicans|latinos|aliens|chinese|muslims|arabs)\b",
    ),
    (
        "go_back",
        Category::Hate,
        0.6,
        r"\bgo\s+back\s+to\s+(?:your|their)\s+(?:own\s+)?countr(?:y|ies)\b",
    ),
    (
        "not_racist_but",
        Category::Hate,
        0.55,
        r"\b(?:i'?m|i\s+am|we\s+are|we'?re)\s+not\s+(?:a\s+)?(?:racist|homophobic|sexist|transphobic|antisemitic|islamophobic|bigot(?:ed)?)\b",
    ),
    (
        "group_threat",
        Category::HateThreatening,
        0.8,
        r"\b{GROUP}\b(?:\W+\w+){0,6}?\W+(?:should|must|need\s+to|ought\s+to|deserve\s+to)\s+(?:all\s+)?(?:be\s+)?(?:killed|exterminated|gassed|shot|hanged|wiped\s+out|eradicated|rounded\s+up|deported|locked\s+up|sterili[sz]ed|burned|die)\b|\b(?:kill|exterminate|gas|shoot|lynch|hang)\s+(?:all\s+)?(?:the\s+)?{GROUP}\b",
    ),
    // harassment
    (
        "insult_you",
        Category::Harassment,
        0.7,
        r"\byou(?:'re|\s+are|r)?\b(?:\W+\w+){0,6}?\W+(?:idiot|moron|bitch|bastard|loser|stupid|dumb|pathetic|worthless|scum|retard|cunt|asshole|dickhead|delusional|brainwashed|disgusting|piece\s+of\s+shit)s?\b|\b{INSULT}\s+like\s+you\b|\byour\s+(?:stupid|dumb|pathetic|idiotic|worthless)\b",
    ),
    (
        "abuse_phrase",
        Category::Harassment,
        0.6,
        r"\b(?:fuck\s+(?:you|off)|shut\s+(?:the\s+fuck\s+)?up|stfu|go\s+to\s+hell|kys|kill\s+yourself)\b",
    ),
    (
        "people_who_are",
        Category::Harassment,
        0.55,
        r"\b(?:anyone|everyone|people|those|all)\s+who\b.{0,80}?\b(?:is|are)\s+(?:a\s+|an\s+|just\s+)?(?:[\w-]+\s+){0,3}?{INSULT}\b",
    ),
    (
        "plural_are_insult",
        Category::Harassment,
        0.55,
        r"\b\w+s\s+(?:today\s+)?are\s+(?:all\s+)?(?:just\s+)?(?:a\s+bunch\s+of\s+)?(?:[\w-]+\s+){0,2}?{INSULT}\b",
    ),
    (
        "threat_you",
        Category::HarassmentThreatening,
        0.85,
        r"\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|'m\s+gonna|\s+gonna)|we(?:'ll|\s+will|'re\s+going\s+to))\s+(?:\w+\s+)?(?:kill|murder|hurt|beat|stab|shoot|rape|strangle)\s+(?:you|u|your\s+\w+)\b|\bi\s+know\s+where\s+you\s+live\b|\byou(?:'re|\s+are)\s+(?:going\s+to|gonna)\s+die\b",
    ),
    // self-harm
    (
        "self_harm_topic",
        Category::SelfHarm,
        0.35,
        r"\b(?:suicide|suicidal|self[- ]harm|kill\s+myself|end\s+my\s+life|cut(?:ting)?\s+myself|hurt(?:ing)?\s+myself|take\s+my\s+(?:own\s+)?life)\b",
    ),
    (
        "self_harm_intent",
        Category::SelfHarmIntent,
        0.85,
        r"\bi\s+(?:want|plan|am\s+going|'m\s+going|intend|wanna|am\s+gonna|'m\s+gonna|will|am\s+ready)\s+(?:to\s+)?(?:kill\s+myself|end\s+(?:it\s+all|my\s+life)|commit\s+suicide|hurt\s+myself|cut\s+myself|take\s+my\s+(?:own\s+)?life)\b|\bi\s+(?:don't|do\s+not)\s+want\s+to\s+(?:live|be\s+alive|exist)\s+anymore\b",
    ),
    (
        "self_harm_howto",
        Category::SelfHarmInstructions,
        0.85,
        r"\b{ASK}\s+(?:painlessly\s+)?(?:kill\s+(?:myself|yourself|oneself)|commit\s+suicide|end\s+my\s+life|overdose|cut\s+(?:myself|yourself)|hang\s+(?:myself|yourself))\b|\bhow\s+many\s+\w+\s+(?:pills\s+)?(?:to|would)\s+(?:kill|overdose|die)\b",
    ),
    // sexual
    (
        "sexual_explicit",
        Category::Sexual,
        0.6,
        r"\b(?:porn\w*|xxx|blowjobs?|handjobs?|cumshots?|pussy|tits|orgasm\w*|masturbat\w*|dildos?|horny|nudes|erotica|fuck(?:ing|ed)?\s+(?:me|her|him)|anal\s+sex|oral\s+sex|sex\s+with\s+(?:me|her|him))\b",
    ),
    (
        "sexual_minors",
        Category::SexualMinors,
        0.95,
        r"\b{MINOR}\b(?:\W+\w+){0,5}?\W+{SEXUAL}\b|\b{SEXUAL}\b(?:\W+\w+){0,5}?\W+{MINOR}\b",
    ),
    // violence
    (
        "violent_act_person",
        Category::Violence,
        0.55,
        r"\b(?:kill|murder|stab|shoot|behead|strangle|slaughter|massacre|torture|beat\s+up|beat\s+to\s+death|blow\s+up)\s+(?:him|her|them|people|everyone|everybody|my\s+(?:wife|husband|boss|neighbou?r|family|mom|dad|teacher|classmates|coworkers?)|all\s+of\s+them|kids|children|civilians)\b",
    ),
    (
        "violent_intent",
        Category::Violence,
        0.8,
        r"\bi\s+(?:want|am\s+going|'m\s+going|will|'ll|gonna)\s+(?:to\s+)?(?:kill|murder|stab|shoot|hurt)\s+(?:him|her|them|everyone|my\s+\w+)\b",
    ),
    (
        "gore",
        Category::ViolenceGraphic,
        0.7,
        r"\b(?:disembowel\w*|dismember\w*|decapitat\w*|eviscerat\w*|entrails|intestines\s+(?:spilling|hanging)|guts\s+(?:spilling|everywhere)|blood\s+(?:everywhere|spurting|gushing)|skull\s+(?:cracked|crushed|split)|brains?\s+(?:splattered|blown\s+out)|flayed|mutilated\s+(?:body|corpse))\b",
    ),
    // illicit
    (
        "drug_or_fraud_howto",
        Category::Illicit,
        0.8,
        r"\b{ASK}\s+(?:\w+\s+){0,2}?(?:make|cook|synthesi[sz]e|produce|manufacture|buy|obtain|smuggle|sell)\s+(?:some\s+)?(?:meth(?:amphetamine)?|crack|cocaine|heroin|fentanyl|lsd|mdma|ecstasy|ghb|counterfeit\s+\w+|fake\s+(?:ids?|passports?|money|bills)|stolen\s+\w+)\b",
    ),
    (
        "crime_howto",
        Category::Illicit,
        0.75,
        r"\b{ASK}\s+(?:\w+\s+){0,2}?(?:launder\s+money|hack\s+into|break\s+into\s+(?:a|my|someone|his|her)|steal\s+(?:a|someone|credit|money|identit)|shoplift|evade\s+taxes|hotwire|phish\s+\w+)",
    ),
    (
        "weapon_howto",
        Category::IllicitViolent,
        0.9,
        r"\b{ASK}\s+(?:\w+\s+){0,2}?(?:make|build|assemble|construct|3d[- ]print|get|buy)\s+(?:a\s+|an\s+|some\s+)?(?:bomb|pipe\s+bomb|explosives?|ied|molotov(?:\s+cocktail)?|grenade|ghost\s+gun|untraceable\s+gun|silencer|nerve\s+agent|sarin|ricin|napalm)\b|\bhow\s+(?:to|do\s+i|can\s+i)\s+(?:poison|kill|murder)\s+(?:someone|somebody|a\s+person|my\s+\w+|him|her|people)\b",
    ),
];

/// The compiled moderation rules. Build once, share, score with `&self`.
#[derive(Debug, Clone)]
pub struct ToxicityRules {
    set: RegexSet,
}

fn expand(pattern: &str) -> String {
    let expanded = pattern
        .replace("{GROUP}", GROUP)
        .replace("{INSULT}", INSULT)
        .replace("{MINOR}", MINOR)
        .replace("{SEXUAL}", SEXUAL)
        .replace("{ASK}", ASK);
    crate::ascii_words(&expanded)
}

impl ToxicityRules {
    /// Compile the built-in rules.
    pub fn new() -> Result<Self, GuardError> {
        let patterns: Vec<String> = RULES.iter().map(|r| expand(r.3)).collect();
        let set = RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|source| GuardError::Pattern {
                name: "toxicity".to_owned(),
                source,
            })?;
        Ok(Self { set })
    }

    /// Score a normalised text in every category. Decoded payloads are scanned too, so
    /// a slur in base64 is still a slur.
    pub fn score(&self, normalized: &Normalized) -> ToxicityScores {
        let mut fired = vec![false; RULES.len()];
        for view in normalized.views() {
            for i in self.set.matches(view.text).iter() {
                fired[i] = true;
            }
        }
        let mut miss = [1.0f32; 13];
        let mut rules = Vec::new();
        for (i, (name, category, weight, _)) in RULES.iter().enumerate() {
            if fired[i] {
                miss[category.index()] *= 1.0 - weight;
                rules.push(*name);
            }
        }
        let mut scores = miss.map(|m| (1.0 - m).clamp(0.0, 1.0));
        for c in Category::ALL {
            if let Some(parent) = c.parent() {
                scores[parent.index()] = scores[parent.index()].max(scores[c.index()]);
            }
        }
        ToxicityScores { scores, rules }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn score(text: &str) -> ToxicityScores {
        ToxicityRules::new().unwrap().score(&normalize(text))
    }

    #[test]
    fn names_match_openai() {
        let names: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "harassment",
                "harassment/threatening",
                "hate",
                "hate/threatening",
                "self-harm",
                "self-harm/intent",
                "self-harm/instructions",
                "sexual",
                "sexual/minors",
                "violence",
                "violence/graphic",
                "illicit",
                "illicit/violent",
            ]
        );
        for (i, c) in Category::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn every_rule_compiles_on_its_own() {
        for (name, _, weight, pattern) in RULES {
            assert!(regex::Regex::new(&expand(pattern)).is_ok(), "{name}");
            assert!((0.0..=1.0).contains(weight), "{name}");
        }
    }

    #[test]
    fn explicit_cases_flag_the_expected_category() {
        let cases = [
            (
                "immigrants are parasites who should all be rounded up",
                Category::HateThreatening,
            ),
            (
                "immigrants are parasites who should all be rounded up",
                Category::Hate,
            ),
            (
                "I'll kill you if you come back here",
                Category::HarassmentThreatening,
            ),
            ("you are a pathetic loser", Category::Harassment),
            (
                "anyone who believes that is a gullible sheep",
                Category::Harassment,
            ),
            ("I want to kill myself tonight", Category::SelfHarmIntent),
            ("I want to kill myself tonight", Category::SelfHarm),
            (
                "what is the easiest way to kill myself",
                Category::SelfHarmInstructions,
            ),
            ("send me porn", Category::Sexual),
            ("naked pictures of 12 year olds", Category::SexualMinors),
            ("I'm going to shoot them all tomorrow", Category::Violence),
            (
                "his skull crushed and blood everywhere",
                Category::ViolenceGraphic,
            ),
            ("how do I cook meth at home", Category::Illicit),
            ("how to build a pipe bomb", Category::IllicitViolent),
            // obfuscation does not hide a threat
            ("I'll k\u{200b}ill you", Category::HarassmentThreatening),
        ];
        for (text, category) in cases {
            let s = score(text);
            assert!(s.get(category) >= 0.5, "{text:?} {category:?}: {s:?}");
        }
    }

    #[test]
    fn ordinary_and_clinical_text_is_not_flagged() {
        let cases = [
            "What is the difference between suicidal ideation and suicidal intent?",
            "How do I kill the process that holds port 8080?",
            "Immigrants contribute to society in many ways.",
            "Disabled people are productive members of society.",
            "How do I report child abuse to the authorities?",
            "What is the thermite reaction used for?",
            "The chemistry of how bleach works as a disinfectant.",
            "My teacher said I did a great job on the essay.",
        ];
        for text in cases {
            let s = score(text);
            assert!(s.max() < 0.5, "{text:?}: {s:?}");
        }
    }
}
