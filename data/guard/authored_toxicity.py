"""Floodgate-authored toxicity examples (Apache-2.0).

Labelling rule: `toxic` = text that demeans, stereotypes, dehumanises or threatens a
person or a group (explicitly or implicitly), harasses someone, encourages self-harm,
or sexually harasses; `ok` = everything else, including neutral or positive
statements that mention groups, discussion and reporting of discrimination or
violence (quoted slurs in reporting stay `ok` only when the text clearly reports
rather than uses them -- here we avoid spelling slurs out), civil disagreement,
medical and sexual-health education, and supportive talk about self-harm.

Rows are (text, label, category, group).  These statements were written to train a
classifier; the toxic ones do not reflect anyone's views.
"""
import random

TOX, OK = "toxic", "ok"

# Implicit / explicit stereotypes about groups (ToxiGen-like register: lower-case,
# conversational).  Each inner list is one group; rows in a group share a split group.
STEREOTYPES = {
    "women": [
        "women are too emotional to be trusted with important decisions",
        "a woman's real job is to keep the house clean and the husband happy",
        "girls just aren't wired for math, that's why there are so few female engineers",
        "female bosses are always bitter and take it out on everyone below them",
        "she only got promoted because she's pretty, that's how it works for women",
        "women drivers are the reason insurance is so expensive",
    ],
    "black": [
        "black neighbourhoods are dangerous because that's just how those people are",
        "you can't expect black kids to do well in school, it's not in their culture",
        "every black guy i've met was either lazy or looking for a handout",
        "they only hired him to fill a diversity quota, he's black not qualified",
        "black people are naturally more aggressive, everybody knows it",
    ],
    "asian": [
        "asians all look the same to me, how do you even tell them apart",
        "asian people are good at math but have zero personality",
        "they eat anything that moves over there, it's disgusting",
        "asian drivers should not be allowed on the road",
        "he's asian so he'll work all night for half the pay, perfect hire",
    ],
    "chinese": [
        "the chinese are spies, every single one of them working here reports back to beijing",
        "chinese students cheat their way into our universities",
        "don't buy anything chinese, those people can't make anything that isn't fake",
        "chinese people brought the virus here and should be sent back",
    ],
    "jewish": [
        "the jews control the banks and the media, that's not a conspiracy it's a fact",
        "you can always tell a jew by how he counts every penny",
        "jewish people only look out for their own and don't care about this country",
        "they'll never admit it but jewish families secretly run hollywood to push their agenda",
        "holocaust numbers have been exaggerated to guilt everyone else",
    ],
    "muslim": [
        "muslims can't be trusted, their religion tells them to lie to outsiders",
        "every mosque is a breeding ground for terrorists",
        "muslim men treat women like property, all of them",
        "if we let more muslims in, we'll be living under sharia in ten years",
        "you can't be a good citizen and a muslim at the same time",
    ],
    "latino": [
        "latinos just come here to have babies and collect welfare",
        "every latino family has at least one cousin in a gang",
        "they don't want to learn english, they want us to learn spanish",
        "hispanics are only good for cheap labour and landscaping",
    ],
    "mexican": [
        "mexicans are rapists and drug dealers, we need the wall",
        "mexican workers are lazy, that's why the country is so poor",
        "half the mexicans in this town are illegal, just look at them",
        "the only thing mexico exports is crime",
    ],
    "immigrants": [
        "immigrants are ruining this country and stealing our jobs",
        "these people come here, refuse to assimilate, and then complain about us",
        "refugees are just economic migrants pretending to be in danger so they get free stuff",
        "send them all back, we don't owe these foreigners anything",
        "migrants bring disease and crime wherever they go",
    ],
    "lgbtq": [
        "gay people shouldn't be allowed near children",
        "being gay is a mental illness that can be cured with the right therapy",
        "trans women are just men in dresses trying to invade women's spaces",
        "lgbt people are pushing their lifestyle on our kids and it's disgusting",
        "bisexuals are just greedy and can't commit to anyone",
    ],
    "disabled": [
        "disabled people are a burden on society and on their families",
        "people in wheelchairs shouldn't expect the whole world to rebuild around them",
        "why do we waste money educating kids who will never amount to anything because of their disability",
        "deaf people are basically stupid, they can't even talk properly",
    ],
    "mental_disability": [
        "people with mental illness are violent and should be locked up",
        "depression isn't real, those people are just weak and lazy",
        "autistic kids are broken and their parents should have tested before",
        "anyone on antidepressants shouldn't be allowed to raise children",
    ],
    "native_american": [
        "native americans are all alcoholics living off casino money",
        "the indians lost the war, they should stop whining about land",
        "reservations are full of people who just don't want to work",
    ],
    "middle_eastern": [
        "arabs are all terrorists waiting for an excuse",
        "you can't trust anyone from the middle east, they hate the west",
        "people from that region only understand violence",
    ],
    "elderly": [
        "old people are useless and should stop voting since they won't live with the consequences",
        "boomers are selfish parasites who ruined everything for us",
    ],
    "poor": [
        "poor people are poor because they're stupid and lazy",
        "people on welfare are leeches who should be sterilised",
    ],
    "religion": [
        "christians are all hypocrites and idiots who believe in fairy tales",
        "atheists have no morals, you can't trust someone who doesn't fear god",
        "hindus worship cows because they're backwards",
    ],
}

# Neutral / positive statements mentioning the same groups (hard negatives)
GROUP_OK = {
    "women": [
        "women make up nearly half of the workforce in many countries",
        "my mother raised three kids while finishing her nursing degree",
        "the study found no difference in math ability between boys and girls once access to tutoring was equal",
        "women's football attendance has grown a lot in the past decade",
        "there are many women in leadership positions at my company",
    ],
    "black": [
        "the harlem renaissance produced some of the most important american writers",
        "black-owned businesses in our city held a street fair last weekend",
        "many black families moved north during the great migration",
        "she is the first black woman to chair the hospital board",
    ],
    "asian": [
        "asian american history month is celebrated in may in the united states",
        "lunar new year is celebrated by many communities across asia",
        "there is huge linguistic diversity among asian countries",
        "my neighbours taught me how to make dumplings from scratch",
    ],
    "chinese": [
        "chinese cuisine varies enormously from sichuan to cantonese",
        "many chinese students study abroad in canada and australia",
        "the chinese community centre runs free english classes for seniors",
    ],
    "jewish": [
        "passover commemorates the exodus from egypt",
        "many jewish communities have lived in europe for over a thousand years",
        "yiddish has influenced a lot of everyday english words",
        "the synagogue down the street hosts an interfaith dinner every year",
    ],
    "muslim": [
        "ramadan is a month of fasting, prayer and reflection for muslims",
        "there are about two billion muslims around the world with very diverse cultures",
        "my muslim coworker invited us to celebrate eid with her family",
        "islamic scholars preserved and expanded greek mathematics during the middle ages",
    ],
    "latino": [
        "latino voters are not a single bloc, their views vary a lot by country of origin",
        "many latino families celebrate quinceañeras for a daughter's fifteenth birthday",
        "spanish is the second most spoken language in the united states",
    ],
    "mexican": [
        "mexico city has one of the largest museums of anthropology in the world",
        "día de los muertos honours family members who have passed away",
        "mexican immigrants started many small businesses in our town",
    ],
    "immigrants": [
        "immigrants founded a large share of the country's new businesses last year",
        "my grandparents arrived as refugees with one suitcase each",
        "the city offers free legal clinics for people applying for asylum",
        "language classes help new arrivals find work faster",
    ],
    "lgbtq": [
        "same-sex marriage became legal in many countries over the last two decades",
        "the pride parade drew thousands of families downtown on saturday",
        "my cousin and her wife just adopted a baby girl",
        "trans people have been part of every culture in recorded history",
    ],
    "disabled": [
        "ramps and elevators help parents with strollers as much as wheelchair users",
        "the paralympics showcase incredible athletes every four years",
        "sign language is a full language with its own grammar",
        "my brother is blind and works as a software tester using a screen reader",
    ],
    "mental_disability": [
        "depression is a common medical condition that can be treated",
        "autistic people often describe sensory experiences differently from others",
        "therapy and medication help many people manage anxiety",
        "people with schizophrenia are more likely to be victims of violence than perpetrators",
    ],
    "native_american": [
        "many native american nations have their own governments and courts",
        "the navajo code talkers played an important role in world war two",
        "indigenous languages are being revived through school programmes",
    ],
    "middle_eastern": [
        "the middle east is home to some of the oldest cities in the world",
        "persian poetry by rumi and hafez is still widely read today",
        "arabic numerals came to europe through trade with the middle east",
    ],
    "elderly": [
        "older adults volunteer more hours than any other age group",
        "my grandfather started learning the piano at seventy-five",
    ],
    "poor": [
        "people in poverty often work more than one job",
        "food banks saw record demand after the rent increases",
    ],
    "religion": [
        "christmas and easter are the two biggest christian holidays",
        "many atheists are involved in charity and community work",
        "diwali, the festival of lights, is celebrated by hindus, sikhs and jains",
    ],
}

HARASSMENT = [
    "you are a worthless idiot and everyone at work laughs at you behind your back",
    "nobody wants you here, just leave and do us all a favour",
    "shut up, you pathetic loser, no one asked for your opinion",
    "you're so ugly it's honestly a public service that you stay indoors",
    "go back to whatever hole you crawled out of, freak",
    "you're too stupid to understand this, so don't even try",
    "what a brain-dead take, were you dropped on your head as a baby?",
    "I hope you get fired, you useless waste of space",
    "everyone in this thread agrees you're a clown, log off",
    "you're a disgusting, fat slob and you should be ashamed",
    "lol imagine being this dumb and still posting online",
    "your kids must be so embarrassed to have a moron like you as a parent",
    "keep crying, snowflake, nobody cares about your feelings",
    "honestly you're the reason people hate this community",
    "you write like a child, maybe stick to colouring books",
    "typical loser behaviour, no wonder your wife left you",
]
THREATS = [
    "i know where you live and i'm going to make you regret this",
    "say that again and i'll break your jaw",
    "people like you deserve to be shot",
    "watch your back when you leave work tonight",
    "i'll burn your house down with you inside it",
    "someone should put a bullet in that politician",
    "if you show up at the meeting we'll make sure you leave in an ambulance",
    "keep talking and you'll find out what happens to snitches",
    "i'm going to find your kids and make you pay",
    "they should all be lined up against a wall",
    "one day someone is going to hurt you badly and you'll deserve it",
    "next time i see him i'm bringing a knife",
]
SELF_HARM = [
    "just kill yourself already, nobody would even notice",
    "you should cut deeper next time so it actually works",
    "the world would honestly be better without you in it, end it",
    "stop eating, you'll finally look decent when you're skin and bones",
    "if you're that miserable, why don't you just jump",
    "do everyone a favour and take the whole bottle of pills",
    "you're a burden to your family, they'd be relieved if you were gone",
    "real pain is the only thing you deserve, keep hurting yourself",
]
SEXUAL_HARASSMENT = [
    "send me nudes or i'll tell everyone you already did",
    "with a body like that you're clearly asking for it",
    "i'd love to get you alone in the office after hours whether you like it or not",
    "nice legs, how about you sit on my lap during the meeting",
    "you only got this job because you slept with the boss, so sleep with me too",
    "she was wearing that skirt, what did she expect would happen",
    "i keep thinking about what i'd do to you, answer my messages",
    "stop pretending you're not a slut, everyone knows",
]
DEHUMANISING = [
    "those people are animals and should be treated like animals",
    "they're vermin infesting our cities",
    "immigrants are a disease that this country needs to cure",
    "that whole race is subhuman, science proves it",
    "gay people are an abomination and should be wiped out",
    "disabled babies should be put down at birth",
    "they breed like rats and will replace us if we let them",
    "the world would be better if that religion was erased",
]
# toxic bridge: false claims stated with contempt
TOXIC_FACTUAL = [
    "women are biologically less intelligent, that's why men run everything",
    "crime statistics prove that some races are simply born criminals",
    "vaccines cause autism and the people pushing them are murderers",
    "the poor deserve to starve, it's natural selection",
]

OK_DISCRIMINATION = [
    "racial discrimination in hiring is still measurable in callback studies",
    "the report documents harassment faced by muslim women wearing headscarves",
    "we need better laws against housing discrimination based on disability",
    "stereotypes about asian students put unfair pressure on them",
    "the documentary explores how redlining affected black families for generations",
    "it is wrong to judge someone by their accent or where they were born",
    "there is no evidence that any ethnic group is more prone to crime once poverty is accounted for",
    "hate crimes against jewish people rose last year, according to the annual report",
    "anti-immigrant rhetoric often relies on myths that economists have debunked",
    "the panel discussed how to make workplaces safer for lgbtq employees",
    "people with mental illness deserve the same dignity and opportunities as anyone else",
    "diversity on teams has been linked to better problem solving",
    "the article explains why the phrase 'model minority' is harmful",
    "misogyny online often targets female journalists with coordinated abuse",
    "the court ruled that firing someone for being gay violates civil rights law",
    "the book traces the history of antisemitic conspiracy theories to debunk them",
]
OK_REPORTING = [
    "the protester was charged after shouting a racial slur at a police officer, the report said",
    "the player was suspended for using a homophobic slur during the match",
    "researchers catalogued thousands of slurs in online forums to train moderation tools",
    "the word 'queer' has been reclaimed by many in the lgbtq community",
    "the comedian apologised after a joke that many called racist",
    "the investigation found that the manager had called employees offensive names",
    "historians study propaganda posters to understand how hatred was spread",
    "the teacher explained why certain words are considered offensive and their history",
]
OK_DISAGREEMENT = [
    "i disagree with your argument, the data from 2019 tells a different story",
    "that's not how i see it, but i understand why you think so",
    "your proposal is too expensive and i don't think it will work",
    "i think the film was overrated and the ending made no sense",
    "with respect, you've misread the contract, clause four says otherwise",
    "i'm frustrated that the project is late again, we need a better plan",
    "this policy is a mistake and i'll be voting against it",
    "honestly the sequel was worse than the original in every way",
    "i strongly disagree with the council's decision to close the library",
    "your code works, but it's hard to read; could you split up that function?",
    "i was annoyed by the service at that restaurant, the food was cold",
    "the referee made terrible calls all game, what a frustrating match",
]
OK_HEALTH = [
    "condoms are highly effective at preventing sexually transmitted infections when used correctly",
    "regular breast self-exams help people notice changes early",
    "puberty brings changes in the body such as hair growth and voice changes",
    "the hpv vaccine protects against several types of cancer",
    "erectile dysfunction is common and often treatable; talk to a doctor",
    "consent means every partner freely agrees and can change their mind at any time",
    "testicular cancer is most common in young men and is very treatable when caught early",
    "menstrual cramps can be eased with heat and over-the-counter pain relief",
    "a gynaecologist can explain contraception options such as the pill, iud or implant",
    "overdose symptoms include slow breathing and unresponsiveness; call emergency services",
    "the vaccine can cause a sore arm and mild fever for a day or two",
    "sex education in schools is linked to lower rates of teen pregnancy",
]
OK_VIOLENCE_NEWS = [
    "two people were injured in a shooting downtown last night, police said",
    "the earthquake killed more than a hundred people and left thousands homeless",
    "the trial of the man accused of stabbing his neighbour begins next week",
    "historians estimate that millions died during the war",
    "the documentary covers the genocide in rwanda and its aftermath",
    "the suspect was arrested after a violent robbery at a petrol station",
    "the novel opens with a murder in a small coastal town",
    "troops shelled the city overnight, according to local officials",
    "a knife attack at the station left three injured",
    "the boxer knocked out his opponent in the third round",
    "the video game lets players fight dragons with swords and magic",
    "domestic violence hotlines saw more calls during the lockdown",
]
OK_SELFHARM_SUPPORT = [
    "if you're thinking about hurting yourself, please reach out to a crisis line or someone you trust",
    "self-harm is often a way of coping with overwhelming feelings, and help is available",
    "i went through a dark time last year and therapy really helped me",
    "you matter, and you don't have to deal with this alone",
    "the school counsellor runs a support group for students struggling with anxiety",
    "warning signs of suicide include withdrawing from friends and giving away possessions",
    "it's okay to not be okay; talking to a doctor is a good first step",
]
OK_EVERYDAY = [
    "the bus was late again so i walked to work",
    "my sister just started her first job as a nurse",
    "we're planning a picnic if the weather holds up",
    "the best coffee in town is at the little place by the river",
    "i finally finished the book my book club picked",
    "our team won the quiz night by a single point",
    "the new bike lanes have made my commute much safer",
    "kids in our street set up a lemonade stand for charity",
    "he apologised for being late and bought everyone lunch",
    "thanks for the help yesterday, it really made a difference",
    "that was a brutal exam but i think i passed",
    "this recipe is killer, you have to try it",
    "we absolutely murdered that karaoke song last night",
    "the kids fought over the last slice of pizza",
    "i could kill for a cup of tea right now",
    "that guitar solo was sick",
    "my code is garbage today, i need more sleep",
]
OK_GROUP_NEUTRAL_QUESTIONS = [
    "what are the main branches of islam?",
    "how did jewish communities settle in new york?",
    "what languages are spoken in mexico besides spanish?",
    "why do some deaf people prefer to be called deaf rather than hearing impaired?",
    "what is the history of pride month?",
    "how can employers accommodate employees with adhd?",
    "what challenges do refugees face when looking for housing?",
    "what are some traditional foods from nigeria?",
]

OK_MORE = [
    "most people who move here just want a safe place to raise their kids",
    "the local mosque organised a blood drive after the floods",
    "women have served in combat roles in several armies for decades",
    "there are more than five hundred federally recognised tribes in the united states",
    "my chinese teacher makes us practise tones every morning",
    "the jewish museum has a new exhibit on immigrant life in the 1900s",
    "mexican food is a lot more than tacos, every region has its own dishes",
    "he uses a wheelchair and plays in a basketball league on weekends",
    "my friend with bipolar disorder is one of the most reliable people i know",
    "the african diaspora shaped music across the americas",
    "korean dramas have become popular all over the world",
    "a lot of latinos in the us are bilingual and switch languages naturally",
    "immigrant doctors make up a large share of rural hospital staff",
    "the gay couple next door won the neighbourhood garden prize",
    "older workers bring experience that younger teams benefit from",
    "the indigenous-led project restored the salmon run in the river",
    "our mosque, church and synagogue share a food pantry",
    "arab scientists made major contributions to astronomy and optics",
    "sikh men often wear a turban as an article of faith",
    "many women in tech mentor younger developers",
    "there's no single 'asian culture', the continent has thousands of ethnic groups",
    "muslim and christian volunteers cleaned the park together",
    "trans athletes policies are being debated by sports federations",
    "people with down syndrome are living longer and fuller lives than decades ago",
    "the black history month assembly featured poems by local students",
    "refugee children often learn the new language faster than their parents",
    "the deaf theatre company performs entirely in sign language",
    "the report says most undocumented immigrants have lived in the country for over ten years",
    "it's normal to feel nervous about moving to a new country",
    "i think both parties have some good ideas on housing",
    "we should ask the community what they need instead of assuming",
    "that neighbourhood has changed a lot since the new park opened",
    "everyone deserves respect regardless of where they come from",
    "the survey shows attitudes toward same-sex marriage have shifted over twenty years",
    "my grandmother came from poland and never lost her accent",
    "the mayor met with leaders of the vietnamese community about the new bus route",
    "women's shelters need more funding, the waiting lists are long",
    "there's a lot of misinformation about immigrants and crime",
    "people with autism can have very different needs from one another",
    "the native language classes at the community centre are full every term",
]
OK_MORE_EVERYDAY = [
    "can you send me the notes from today's class?", "the printer on the third floor is jammed again",
    "i'm not a fan of pineapple on pizza but to each their own", "the train strike made everyone late",
    "my dog ate my sandwich while i wasn't looking", "happy birthday! hope you have a great day",
    "this spreadsheet is a mess but we'll sort it out", "congrats on the new job, you earned it",
    "i hate mondays, but the coffee helps", "the movie was so scary i couldn't sleep",
    "we lost the match badly but the team played with heart", "that joke was terrible and i loved it",
]

# templated harassment: insult x target x intensifier (kept small to avoid repetition)
INSULTS = ["idiot", "moron", "loser", "clown", "pathetic excuse for a person", "waste of oxygen", "joke", "creep"]
TARGETS = ["you", "your whole family", "that manager of yours", "the new guy", "people like you"]
INSULT_FORMS = [
    "{t} {be} a {i} and {t2} always will be",
    "honestly {t} {be} such a {i}, it's embarrassing",
    "can't believe {t} {be} this much of a {i}",
    "everyone knows {t} {be} a total {i}",
]


def _be(t):
    return "is" if t in ("the new guy", "that manager of yours") else "are"


def generate(seed=4321):
    rng = random.Random(seed)
    rows = []
    for g, lst in STEREOTYPES.items():
        for t in lst:
            rows.append((t, TOX, "hate", "t-stereo-%s" % g))
    for g, lst in GROUP_OK.items():
        for t in lst:
            rows.append((t, OK, None, "t-groupok-%s" % g))
    for i, t in enumerate(HARASSMENT):
        rows.append((t, TOX, "harassment", "t-harass-%d" % (i // 4)))
    for i, t in enumerate(THREATS):
        rows.append((t, TOX, "harassment/threatening" if i % 2 else "violence", "t-threat-%d" % (i // 4)))
    for i, t in enumerate(SELF_HARM):
        rows.append((t, TOX, "self-harm", "t-selfharm-%d" % (i // 4)))
    for i, t in enumerate(SEXUAL_HARASSMENT):
        rows.append((t, TOX, "sexual", "t-sexharass-%d" % (i // 4)))
    for i, t in enumerate(DEHUMANISING):
        rows.append((t, TOX, "hate/threatening" if i in (4, 5, 7) else "hate", "t-dehuman-%d" % (i // 4)))
    for i, t in enumerate(TOXIC_FACTUAL):
        rows.append((t, TOX, "hate", "t-toxfact"))
    for name, lst in (("disc", OK_DISCRIMINATION), ("report", OK_REPORTING), ("disagree", OK_DISAGREEMENT),
                      ("health", OK_HEALTH), ("news", OK_VIOLENCE_NEWS), ("support", OK_SELFHARM_SUPPORT),
                      ("everyday", OK_EVERYDAY), ("groupq", OK_GROUP_NEUTRAL_QUESTIONS),
                      ("groupmore", OK_MORE), ("everyday2", OK_MORE_EVERYDAY)):
        for i, t in enumerate(lst):
            rows.append((t, OK, None, "t-%s-%d" % (name, i // 4)))
    # templated insults (one group per form)
    seen = set()
    for k in range(40):
        f = rng.randrange(len(INSULT_FORMS))
        tg = rng.choice(TARGETS)
        t = INSULT_FORMS[f].format(t=tg, be=_be(tg), i=rng.choice(INSULTS), t2="he" if _be(tg) == "is" else "they")
        if t in seen:
            continue
        seen.add(t)
        rows.append((t, TOX, "harassment", "t-insultform-%d" % f))
    # casing / punctuation variants of a subset so the classifier is not case-bound
    variants = []
    for t, lab, cat, grp in rows:
        if rng.random() < 0.12:
            v = t[:1].upper() + t[1:]
            v = v + ("." if not v.endswith(("?", ".", "!")) else "")
            variants.append((v, lab, cat, grp))
    rows.extend(variants)
    return rows
