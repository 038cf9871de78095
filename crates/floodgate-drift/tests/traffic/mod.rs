//! Synthetic chat traffic for the drift tests: English prose prompts (the reference) and three
//! shifted populations (French prose, code, much longer prompts), each turned into the drift
//! features the gateway would record. The sentence embedding is a stand-in: a hashed
//! bag-of-words vector projected like a real one (the gateway embeds with MiniLM), so the
//! MMD path sees text-dependent vectors.

#![allow(dead_code)]

use floodgate_drift::{project, Features, SplitMix64};

pub struct Traffic {
    rng: SplitMix64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Population {
    English,
    French,
    Code,
    Long,
}

const TOPICS: &[&str] = &[
    "photosynthesis",
    "compound interest",
    "the immune system",
    "climate change",
    "machine learning",
    "the stock market",
    "black holes",
    "the French Revolution",
    "inflation",
    "vaccines",
    "plate tectonics",
    "the water cycle",
    "electric cars",
    "solar panels",
    "the Roman Empire",
    "quantum computing",
    "sleep cycles",
    "muscle growth",
    "the internet",
    "blockchain",
    "supply and demand",
    "jazz music",
];
const TASKS: &[&str] = &[
    "writing a cover letter",
    "planning a trip to Italy",
    "choosing a laptop",
    "learning to cook",
    "preparing for a job interview",
    "training for a marathon",
    "organizing my week",
    "saving money",
    "writing a speech for my sister's wedding",
    "starting a vegetable garden",
    "studying for my exams",
    "decorating a small apartment",
    "writing an email to my landlord",
    "picking a name for my dog",
];
const FOLLOW: &[&str] = &[
    "Please keep it simple.",
    "I am a complete beginner.",
    "It is for a school project.",
    "I have been trying for a few days without much luck.",
    "Can you give an example?",
    "Explain it like I am twelve years old.",
    "I would like a short answer.",
    "Thanks in advance!",
    "My teacher said it was important but never explained why.",
    "Bullet points would be great.",
    "I read about it online but the articles were confusing.",
    "Please be as detailed as you can.",
];
const REPLIES: &[&str] = &[
    "Sure, here is a short explanation of the main idea.",
    "Of course. Let me walk you through it step by step.",
    "Great question! There are a few things to keep in mind.",
    "Here are some suggestions that might help you.",
];

const FR_TOPICS: &[&str] = &[
    "la photosynthèse",
    "les intérêts composés",
    "le système immunitaire",
    "le changement climatique",
    "l'apprentissage automatique",
    "la bourse",
    "les trous noirs",
    "la Révolution française",
    "l'inflation",
    "les vaccins",
    "le cycle de l'eau",
    "les voitures électriques",
    "l'Empire romain",
    "le sommeil",
];
const FR_TASKS: &[&str] = &[
    "écrire une lettre de motivation",
    "organiser un voyage en Italie",
    "choisir un ordinateur",
    "apprendre à cuisiner",
    "préparer un entretien d'embauche",
    "m'entraîner pour un marathon",
    "économiser de l'argent",
    "écrire un discours pour le mariage de ma sœur",
    "réviser mes examens",
];
const FR_FOLLOW: &[&str] = &[
    "Merci de rester simple.",
    "Je suis complètement débutant.",
    "C'est pour un projet scolaire.",
    "J'essaie depuis plusieurs jours sans succès.",
    "Peux-tu me donner un exemple ?",
    "Explique-le comme si j'avais douze ans.",
    "Je voudrais une réponse courte.",
    "Merci d'avance !",
    "Mon professeur a dit que c'était important mais il n'a jamais expliqué pourquoi.",
];
const FR_REPLIES: &[&str] = &[
    "Bien sûr, voici une courte explication de l'idée principale.",
    "Avec plaisir. Je vais t'expliquer étape par étape.",
    "Bonne question ! Il y a plusieurs choses à garder en tête.",
];

const NAMES: &[&str] = &[
    "items", "users", "total", "count", "result", "data", "values", "config", "buffer", "index",
];
const QUESTIONS: &[&str] = &[
    "Why does this not work?",
    "Can you fix this bug?",
    "What does this code do?",
    "How can I make this faster?",
    "Please add error handling:",
    "Convert this to TypeScript:",
];

impl Traffic {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.rng.below(list.len())]
    }

    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.rng.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.next_f64() < p
    }

    fn english_message(&mut self) -> String {
        let topic = self.pick(TOPICS);
        let other = self.pick(TOPICS);
        let task = self.pick(TASKS);
        let n = self.between(2, 7);
        let mut text = match self.rng.below(8) {
            0 => format!("Can you explain how {topic} works?"),
            1 => format!("What is the difference between {topic} and {other}?"),
            2 => format!("I need help {task}."),
            3 => format!("Write a short story about {topic}."),
            4 => format!("Summarize the main ideas of {topic} in {n} sentences."),
            5 => format!("Give me {n} tips for {task}."),
            6 => format!("My friend asked me about {topic} and I did not know what to say."),
            _ => format!(
                "I'm working on a report about {topic}, and I am stuck on the part about {other}."
            ),
        };
        for _ in 0..self.between(0, 3) {
            text.push(' ');
            text.push_str(self.pick(FOLLOW));
        }
        text
    }

    fn french_message(&mut self) -> String {
        let topic = self.pick(FR_TOPICS);
        let other = self.pick(FR_TOPICS);
        let task = self.pick(FR_TASKS);
        let n = self.between(2, 7);
        let mut text = match self.rng.below(7) {
            0 => format!("Peux-tu m'expliquer comment fonctionne {topic} ?"),
            1 => format!("Quelle est la différence entre {topic} et {other} ?"),
            2 => format!("J'ai besoin d'aide pour {task}."),
            3 => format!("Écris une courte histoire sur {topic}."),
            4 => format!("Résume les idées principales sur {topic} en {n} phrases."),
            5 => format!("Donne-moi {n} conseils pour {task}."),
            _ => format!("Je travaille sur un rapport sur {topic} et je bloque sur la partie concernant {other}."),
        };
        for _ in 0..self.between(0, 3) {
            text.push(' ');
            text.push_str(self.pick(FR_FOLLOW));
        }
        text
    }

    fn code_message(&mut self) -> String {
        let a = self.pick(NAMES);
        let b = self.pick(NAMES);
        let n = self.between(2, 100);
        let snippet = match self.rng.below(3) {
            0 => format!(
                "def process_{a}({a}, limit={n}):\n    {b} = []\n    for item in {a}:\n        if item > limit:\n            {b}.append(item * 2)\n    return {b}\n"
            ),
            1 => format!(
                "function update{n}({a}) {{\n  const {b} = {a}.filter((x) => x.active);\n  return {b}.map((x) => x.id * {n});\n}}\n"
            ),
            _ => format!(
                "fn sum_{a}({a}: &[u64]) -> u64 {{\n    let mut {b} = 0;\n    for x in {a}.iter() {{\n        {b} += x * {n};\n    }}\n    {b}\n}}\n"
            ),
        };
        if self.chance(0.5) {
            format!("{}\n```\n{snippet}```", self.pick(QUESTIONS))
        } else {
            snippet
        }
    }

    /// Prompt text and turn count for one request of `population` (the end-to-end test
    /// in `crates/floodgate` sends these through a server).
    pub fn prompt_text(&mut self, population: Population) -> (String, u32) {
        self.prompt(population)
    }

    /// Prompt text and turn count for one request of `population`.
    fn prompt(&mut self, population: Population) -> (String, u32) {
        let turns = self.between(1, 3);
        let mut parts = Vec::new();
        for turn in 0..turns {
            if turn > 0 {
                let reply = if population == Population::French {
                    FR_REPLIES
                } else {
                    REPLIES
                };
                parts.push(self.pick(reply).to_owned());
            }
            parts.push(match population {
                Population::English => self.english_message(),
                Population::French => self.french_message(),
                Population::Code => self.code_message(),
                Population::Long => {
                    // A pasted document: 5 to 10 times the usual length.
                    let paragraphs = self.between(6, 12);
                    let mut doc = String::from(
                        "Please review the following notes and tell me what is missing:\n",
                    );
                    for _ in 0..paragraphs {
                        doc.push('\n');
                        for _ in 0..2 {
                            doc.push_str(&self.english_message());
                            doc.push(' ');
                        }
                    }
                    doc
                }
            });
        }
        (parts.join("\n\n"), turns as u32)
    }

    /// One request's features, as the gateway would record them.
    pub fn request(&mut self, population: Population) -> Features {
        let (text, turns) = self.prompt(population);
        let mut f = Features::from_text(&text);
        let chars_per_token = match population {
            Population::English | Population::Long => 4.2,
            Population::French => 3.6,
            Population::Code => 3.0,
        };
        let noise = 0.9 + 0.2 * self.rng.next_f64();
        f.prompt_tokens = (f64::from(f.prompt_chars) / chars_per_token * noise).round() as u32;
        f.completion_tokens = (5.0 + 0.6 * self.rng.gaussian()).exp().round() as u32;
        f.turns = turns;
        f.guard_score = Some(sigmoid(-3.0 + self.rng.gaussian()) as f32);
        f.router_score = Some(sigmoid(1.2 * self.rng.gaussian()) as f32);
        f.refused = self.chance(0.03);
        f.escalated = self.chance(0.08);
        f.embedding = Some(project(&bag_of_words(&text)));
        f
    }

    pub fn requests(&mut self, population: Population, n: usize) -> Vec<Features> {
        (0..n).map(|_| self.request(population)).collect()
    }

    /// A unit-variance Gaussian vector of `dim` numbers (for the synthetic embedding test).
    pub fn gaussian_vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.rng.gaussian() as f32).collect()
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Hashed bag of words (FNV-1a into 128 signed buckets): the stand-in sentence embedding.
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 128];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % 128) as usize] += sign;
    }
    v
}
