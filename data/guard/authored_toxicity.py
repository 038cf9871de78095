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

# More implicit stereotypes (backhanded compliments, "i'm not racist but", coded
# generalisations, "jokes", rhetorical questions, paternalism), ToxiGen-like register.
# Keys match STEREOTYPES; each group gets its own split group ("t-stereo2-<group>").
STEREOTYPES_IMPLICIT = {
    "women": [
        "i'm all for equal pay but let's be honest, most women would rather be home with the kids anyway",
        "she's pretty sharp for a woman, you could actually follow her presentation",
        "Women in charge always end up running the office like a high school friendship group.",
        "no offence but i'd rather have a male surgeon, you want someone who stays calm under pressure",
        "asking a woman to explain how an engine works is like asking a cat to",
        "girls who go into engineering usually switch to marketing once they realise how hard it is",
        "it's cute when women try to talk about politics, they just repeat whatever their husband said at dinner",
        "Feminism gave women the right to work and now they complain they're tired, maybe nature had it right.",
    ],
    "jewish": [
        "i'm not antisemitic but have you ever noticed who ends up owning all the big banks",
        "jewish people are so clever with money, you have to keep an eye on your wallet around them",
        "Funny how every big war somehow ends up making the same few families richer, just asking questions.",
        "they bring up the holocaust whenever anyone criticises them, it's a very convenient shield",
        "no matter which country they live in their loyalty is always to israel first and the country second",
        "my cousin married into a jewish family and now she's suddenly an expert at haggling lol",
        "you won't see them doing any real work, they're the ones who own the places where the work gets done",
        "a jewish landlord will never fix anything unless fixing it costs him less than",
    ],
    "latino": [
        "he speaks really good english for a latino, you'd never guess",
        "every time a latino family moves in the street gets three more cars parked on the lawn",
        "Latinos are great workers as long as someone is standing over them.",
        "i don't mind hispanics, i just don't want my kids' school turning into a spanish-speaking school",
        "they have so many kids because the government pays them for each one, it's a business model",
        "latino men are all hot-headed, one wrong word and things get ugly",
        "why should i press 1 for english in my own country, if they want to live here they can",
        "you can always tell which houses on the block are latino by the music at 2am and the",
    ],
    "muslim": [
        "i have nothing against muslims personally but why do they all have to live in the same neighbourhoods, it's like they're building their own little country inside ours and waiting for the numbers to",
        "a muslim who says he's moderate is just one who hasn't been radicalised yet",
        "Muslim women only cover up because their husbands would punish them otherwise, they don't know any better.",
        "funny how the religion of peace is always in the news for the wrong reasons",
        "they want to live in the west but bring along all the rules of the place they ran away from",
        "would you honestly feel safe on a plane with a guy praying in arabic right before takeoff",
        "every muslim family has like seven kids, they're out-breeding everyone else on purpose",
        "muslims should be grateful we let them build mosques here at all",
    ],
    "disabled": [
        "it's so inspiring when disabled people manage to leave the house at all, good for them honestly",
        "why should a shop pay for a ramp so that one person in a wheelchair can come in once a year",
        "People in wheelchairs use their disability to skip every queue, it's a free pass for life.",
        "i feel sorry for whoever ends up marrying a blind person, it's basically a full-time carer job",
        "disabled parking is a scam, half of them can walk just fine when nobody is looking",
        "you can't really expect someone who can't walk to be a proper manager, how would they even",
        "hiring someone with a disability is charity, not a business decision, let's not pretend",
        "he's doing so well for someone in his condition, you'd almost think he was normal",
    ],
    "chinese": [
        "chinese people are hard workers, they just don't have a single original idea of their own",
        "I'm not racist but I wouldn't trust a Chinese coworker with anything confidential.",
        "everything from china is knock-off junk and the people are the same, copy and paste",
        "chinese tourists are the worst, no manners, pushing and shouting wherever they go",
        "if a chinese family buys the house next door, watch the cats in the neighbourhood start disappearing",
        "they'll eat bats and dogs and then act surprised when another virus comes out of",
        "chinese students only come here to take our research and send it home",
        "you can't have a normal conversation with chinese people, all they care about is money and status",
    ],
    "mental_disability": [
        "people with depression just need some fresh air and a bit of backbone, the rest is self-pity",
        "i wouldn't let someone with bipolar anywhere near my kids, you never know which mood you'll get",
        "Autistic people can be useful for data entry, just don't put them in front of customers.",
        "everyone's got anxiety these days, back in my day we called that being a grown-up and dealing with it",
        "schizophrenics belong in an institution, not living next door to normal families",
        "adhd is what we used to call a kid who needed more discipline at home",
        "you can't put someone with a learning disability on a jury, they'd just vote with whoever talks the loudest",
        "you can't take anything a mentally ill person says seriously, they're not",
    ],
    "asian": [
        "asians are so quiet and polite, that's why they make good employees, they never complain about anything",
        "she's asian so of course she's a doctor, what else would her parents have let her be",
        "Asian men just aren't attractive, nobody actually wants to date them.",
        "no point hiring asians for leadership roles, they're followers by nature",
        "every asian kid in my class was a robot, all study and zero personality",
        "i can't understand a word the asian call centre people say, they should learn proper english before",
        "you'd think with all those brains they could figure out how to drive",
        "asians stick together and never mix, then complain that nobody invites them anywhere",
    ],
    "mexican": [
        "mexico doesn't send its doctors and engineers up here, it sends whoever it wants to get rid of",
        "mexicans are great at roofing and cleaning, that's what they're built for",
        "Every Mexican restaurant in town is probably a front for something, just saying.",
        "you can't trust a mexican contractor to finish on time, it's always mañana with them",
        "why do mexicans need twelve people living in one house, it's like a clown car",
        "honestly when you strip it down mexican culture is basically tequila, siestas, loud parties and",
        "if mexico is so wonderful why do they all keep trying to come here and",
        "the mexicans in my building have turned the whole place into a little tijuana",
    ],
    "native_american": [
        "native americans had thousands of years and never even invented the wheel, so",
        "the tribes get free money from the government and still complain, some people are never satisfied",
        "Native Americans should be thankful for modern medicine instead of whining about history.",
        "every reservation i've driven through looked like nobody there had worked a day in their life",
        "it's just a mascot, they should be honoured anyone still remembers they exist",
        "they sold the land for beads fair and square and now suddenly they want it back",
        "native culture is just feathers and dream catchers, there's nothing there worth preserving",
        "giving them casino money is pointless, it goes straight to the liquor store",
    ],
    "middle_eastern": [
        "i'm not racist but when a middle eastern guy gets on the plane everyone gets a bit nervous, that's just instinct",
        "people from the middle east have been fighting each other for thousands of years, it's in their blood",
        "Arab men don't respect women, it's simply how they're raised over there.",
        "every middle eastern shop owner is ripping you off, haggling is just lying with extra steps in their culture",
        "they should fix their own countries instead of coming over here and",
        "iranians, iraqis, syrians, whatever, they're all the same angry bearded guys you see on the news",
        "you can't bring democracy to the middle east, those people prefer a strongman telling them what to do",
        "nice guy for an arab, you'd never know he was from that part of the world",
    ],
    "lgbtq": [
        "i don't care what gay people do at home, i just don't want my kids having to see it",
        "being trans is a trend, in ten years they'll all regret what they did to their bodies",
        "Gay men make great shopping friends but I wouldn't want one coaching my son's football team.",
        "lesbians just haven't met the right man yet",
        "pride month is just an excuse for gay people to show off how degenerate they are in front of families",
        "non-binary is something bored teenagers invented for attention, it isn't a real thing",
        "two dads raising a kid is an experiment on a child who never got a say",
        "every gay teacher has an agenda, you can't leave them alone with a classroom of",
    ],
    "black": [
        "he's really articulate for a black guy, you'd never guess where he grew up",
        "i'm not racist, i just lock my car doors when i drive through black neighbourhoods",
        "Black people are great at sports and music, it's the academic stuff that's a struggle for them.",
        "why do black people make everything about race, slavery was ages ago, get over it",
        "every black family i know has a dad who isn't around, it's a culture thing",
        "go ahead and hire black candidates, just don't expect them to show up on time",
        "they burn down their own neighbourhoods and then ask why nobody wants to invest there",
        "black kids need a firm hand, soft teachers just get walked all over by",
    ],
    "immigrants": [
        "they should stay in their own country and fix it instead of dumping their problems on us, we already have enough of our own and nobody here asked for more mouths to feed",
        "i'm fine with immigrants as long as they clean, cook and stay out of sight",
        "Immigrants send every cent back home, they don't care about this country one bit.",
        "we let them in and now whole streets don't have a single sign in english",
        "refugees have nicer phones than i do, doesn't look like they're fleeing anything to me",
        "the more immigrants a town takes in the worse it smells, just an observation",
        "an immigrant will never really be one of us, no matter how long they've lived here",
        "first they come for work, then they bring the whole village and",
    ],
}

# More benign rows about the same groups and in the same register: facts, anecdotes,
# history, culture, food, questions, support, edgy-looking but non-demeaning remarks and
# scraped-text fragments.  Split group "t-groupok2-<group>".
GROUP_OK_MORE = {
    "women": [
        "my aunt was the first woman in her village to get a driving licence",
        "women could not vote in swiss federal elections until 1971",
        "Is there a good book on the history of women in computing? I loved the one about the NASA mathematicians.",
        "the women's rugby team sold out the stadium for the first time this year",
        "my wife handles all the money in our house because she's much better at it than me",
        "a lot of the women i work with say they get talked over in meetings",
        "only about five percent of airline pilots are women, which surprised me",
        "my mum says she never cooked until she was thirty and she still burns the",
    ],
    "jewish": [
        "my jewish neighbour brings us latkes every hanukkah and we bring her cookies at christmas",
        "yiddish theatre was hugely popular on the lower east side in the early 1900s",
        "Is it rude to ask a Jewish friend which holidays they observe? I don't want to schedule things over them.",
        "plenty of jewish people aren't religious at all, for many it's more about culture and family",
        "my grandfather survived the camps and never talked about it until he was eighty",
        "bagels came to north america with jewish immigrants from eastern europe",
        "there are old jewish communities in ethiopia, india and yemen, each with their own traditions",
        "the rabbi and the imam ran the charity half marathon together this year",
    ],
    "latino": [
        "my latina roommate laughs every time someone assumes all central american food is spicy",
        "latinos can be of any race, there are afro-latinos, indigenous latinos and white latinos",
        "my abuela still watches telenovelas every night and yells at the villains",
        "Latino-owned businesses are one of the fastest growing groups of small businesses in the country.",
        "the salsa class at the community centre is mostly retirees and they dance circles around me",
        "my cousins in puerto rico think my spanish is hilarious",
        "hispanic heritage month starts in the middle of september, which confuses everyone",
        "a lot of latino families i know have three generations under one roof and it honestly works",
    ],
    "muslim": [
        "my muslim friend fasts during ramadan and still goes for a run before iftar",
        "Many Muslim women choose to wear the hijab, and many others choose not to.",
        "indonesia has the largest muslim population of any country",
        "the mosque near my office holds an open day every spring and anyone can walk in",
        "my coworker prays in the quiet room on his lunch break and nobody thinks twice about it",
        "muslims are a religious group, not an ethnicity, they come from every continent",
        "is it okay to eat lunch in front of a muslim colleague during ramadan or is that rude",
        "attacks on muslims tend to spike after every terror attack even though they had nothing to do with it",
    ],
    "disabled": [
        "my sister has cerebral palsy and she's easily the funniest person in our family",
        "all the new subway stations have lifts, which is great for wheelchair users",
        "Accessible design helps everyone, not just people with disabilities.",
        "he lost his leg in a motorbike accident and now runs marathons on a carbon blade",
        "disability is the one minority group anyone can join at any time",
        "my deaf coworker taught the whole team some basic sign language over lunch",
        "it's almost impossible to find a flat with step-free access in this city",
        "can anyone recommend a screen reader for my dad, he just lost most of his sight and",
    ],
    "chinese": [
        "my friend's chinese grandmother taught us to pull noodles by hand, mine kept snapping",
        "mandarin and cantonese are different enough that speakers often can't understand each other",
        "Chinese New Year in our city has a dragon parade that goes right past my flat.",
        "paper, the compass and printing were all invented in china",
        "the chinese restaurant down the road has been run by the same family for forty years",
        "thousands of chinese labourers built the railways through the american west in the 1860s",
        "i'm learning to write chinese characters and it's the hardest thing i've ever done",
        "the chinese exclusion act of 1882 was one of the first us laws to ban immigration by nationality",
    ],
    "mental_disability": [
        "i've had anxiety since i was a teenager and medication helped more than i expected",
        "my brother has down syndrome and works part-time at the garden centre",
        "Therapy waiting lists in my area are six months long, which is ridiculous.",
        "adhd in adults often goes undiagnosed, especially in women",
        "my friend with ocd explained it's not about being tidy, it's about thoughts you can't switch off",
        "is it normal to feel worse for the first couple of weeks on antidepressants",
        "people with intellectual disabilities can live independently with the right support",
        "telling my manager about my depression was scary but she was really kind about it",
    ],
    "asian": [
        "my asian friends keep daring me to try durian and i'm not brave enough",
        "the asian night market had food from at least ten different countries",
        "Asian Americans are incredibly diverse, from Hmong and Filipino to Korean and Bangladeshi communities.",
        "poverty rates differ a lot between asian american communities, some are well above average",
        "my korean coworker brought in kimchi her mum made and it was incredible",
        "anti-asian harassment went up sharply during the pandemic according to several surveys",
        "the japanese garden in the park is best in april when the cherry trees bloom",
        "why is rice the staple across so much of asia but bread in europe, is it the climate",
    ],
    "mexican": [
        "my mexican friend says proper mole takes two days to make and i believe her",
        "mexico officially recognises sixty-eight indigenous languages alongside spanish",
        "Mexican muralists like Diego Rivera painted huge murals about workers and history.",
        "my dad worked with mexican guys on the farm for thirty years and they're still his best friends",
        "the mariachi band at my cousin's wedding played for four hours straight",
        "mexican independence day is september 16, not cinco de mayo like most people think",
        "what's the difference between a tamal and a tamale, my coworker laughed at me for asking",
        "growing up in a mexican household meant every sunday there was a huge lunch and",
    ],
    "native_american": [
        "my grandmother is cherokee and she still makes fry bread every sunday",
        "several tribes run their own colleges, like diné college in arizona",
        "Native American tribes are sovereign nations with their own treaty rights.",
        "the powwow this weekend had dancers from at least twenty nations",
        "native americans were not all granted us citizenship until 1924",
        "lacrosse started as a native american game long before europeans arrived",
        "boarding schools separated native children from their families for generations",
        "what's the right word to use, native american, indigenous, or just the name of the nation",
    ],
    "middle_eastern": [
        "my lebanese neighbour's grandmother makes the best tabbouleh i've ever had",
        "persian new year, nowruz, falls on the spring equinox",
        "Not everyone from the Middle East is Arab; there are Persians, Kurds, Turks and many others.",
        "my iraqi coworker was a civil engineer back home and had to requalify when he moved here",
        "the old city of damascus is one of the oldest continuously inhabited places on earth",
        "arabic is written right to left and the script has no capital letters",
        "i've been learning to cook persian rice and the crispy bit at the bottom is worth the effort",
        "people of middle eastern descent are counted as white on the us census, which many say hides them",
    ],
    "lgbtq": [
        "my brother came out at christmas and my grandma just nodded, asked if his boyfriend likes turkey, and then went straight back to complaining about the gravy being too thin",
        "The Stonewall uprising in 1969 is widely seen as the start of the modern gay rights movement.",
        "the lgbt youth centre offers free counselling on weekends",
        "my trans coworker changed her name last year and honestly it was no big deal",
        "bisexual people often say they get doubted by both gay and straight people",
        "alan turing was prosecuted for being gay and only pardoned decades after his death",
        "how do i ask a new colleague which pronouns they use without making it awkward",
        "the rainbow flag was designed by gilbert baker in 1978",
    ],
    "black": [
        "my black coworker introduced me to jollof rice and now i make it every week",
        "Black history is American history, and most schools only give it a few weeks.",
        "the tulsa race massacre in 1921 destroyed a thriving black business district",
        "the black barbershop on my street is basically the neighbourhood's town hall",
        "jazz, blues and hip hop all came out of black communities",
        "studies show black patients are often undertreated for pain",
        "why do some people prefer african american and others prefer black",
        "my black grandmother marched in selma and still has the",
    ],
    "immigrants": [
        "my parents were immigrants and worked night shifts for twenty years so i could go to university, and my mum still packs me leftovers every time i visit like i'm about to",
        "Immigrants make up a large share of nurses and care workers in many countries.",
        "my grandmother still writes her shopping list in two languages",
        "the immigrant-run bakery on our corner opens at 5am and sells out by noon",
        "new arrivals often take jobs far below their qualifications because their degrees aren't recognised",
        "ellis island processed about twelve million immigrants between 1892 and 1954",
        "what documents do you need to apply for permanent residency",
        "my dad's accent gets way stronger whenever he's on the phone with his brother back home",
    ],
}

# "Bridge" rows: sentence-cased opinions about non-demographic groups.  Toxic = contemptuous
# blanket insult or a call to silence/ban/punish the whole group; ok = respectful statement
# or civil disagreement about the same group.  Both labels for a target share a split group
# ("t-bridge-<target>").
BRIDGE_TOXIC = {
    "scientists": [
        "Scientists are arrogant frauds who fake their data for grant money and should all be defunded.",
    ],
    "healthcare": [
        "Nurses who complained during the pandemic are ungrateful whiners and should have been fired on the spot.",
        "Anyone who works in public health is a power-hungry liar and should be prosecuted for the lockdowns.",
    ],
    "ev_owners": [
        "Electric-car drivers are sanctimonious leeches living off tax credits, and their cars should be taxed off the road.",
    ],
    "remote_workers": [
        "Remote workers are lazy freeloaders who watch TV all day and should be docked pay until they come back.",
        "Anyone who still defends working from home is a parasite and should be first out the door in the next layoffs.",
    ],
    "liberals": [
        "Every liberal is a brainwashed idiot and they should be banned from teaching in schools.",
        "Liberals are mentally ill and should be kept well away from children.",
    ],
    "conservatives": [
        "Conservatives are all bigoted morons who should lose the right to vote.",
        "Conservatives are knuckle-dragging fossils and should be shut out of every university.",
    ],
    "teachers": [
        "Teachers are glorified daycare staff who couldn't hack it in a real job and should be replaced by apps.",
        "Anyone who teaches gender studies is a propagandist who should be fired and blacklisted.",
    ],
    "environmentalists": [
        "Environmentalists are hysterical cultists and anyone who blocks a road should be locked up for years.",
        "Environmentalists are eco-fascists who want the rest of us freezing in the dark, shut them up for good.",
    ],
    "tech_workers": [
        "Tech workers are overpaid nerds with no social skills who deserve every layoff they get.",
    ],
    "students": [
        "Students today are entitled snowflakes who should be expelled the moment they complain about anything.",
        "Students who protest should lose their scholarships, every last one of them.",
    ],
    "critics": [
        "Film critics are bitter failures who hate everything and nobody should ever let them publish again.",
        "Anyone who criticises the government is a traitor and belongs in jail.",
    ],
    "skeptics": [
        "Vaccine skeptics are too stupid to argue with and should have their kids taken away from them.",
    ],
    "atheists": [
        "Atheists are immoral nihilists and should never be allowed to hold public office.",
    ],
    "religious": [
        "Religious people are gullible sheep and anyone who prays in public should be mocked until they stop.",
        "Religious people are a danger to society and should be banned from raising their kids in their faith.",
    ],
    "older_people": [
        "Older people are useless dinosaurs who should be forced to retire and stop clogging up the workplace.",
    ],
    "gamers": [
        "Gamers are basement-dwelling manchildren and anyone over thirty who still plays video games should be ashamed.",
        "Gamers are violent misfits waiting to snap, every console owner should be on a police register.",
    ],
}
BRIDGE_OK = {
    "scientists": [
        "Scientists sometimes get things wrong, but replication is how those errors get caught and corrected.",
    ],
    "healthcare": [
        "Healthcare workers carried an enormous load during the pandemic and many are still burnt out.",
        "Public health officials had to make hard calls with incomplete information, and some of those calls look different now.",
    ],
    "ev_owners": [
        "Most electric-car owners I know switched mainly to save money on fuel.",
        "I don't think electric cars suit rural drivers yet, the charging network is still too thin.",
    ],
    "remote_workers": [
        "Remote work suits some people better than others, and many teams have settled on a hybrid week.",
        "I prefer working in the office, but I understand why parents value being able to work from home.",
    ],
    "liberals": [
        "I disagree with liberals on taxes, but I respect that they care about public services.",
    ],
    "conservatives": [
        "Many conservatives I know are motivated by concern for their families and local communities.",
        "Conservatives and liberals on our council worked together on the new flood defences.",
    ],
    "teachers": [
        "Teachers often spend their own money on classroom supplies.",
    ],
    "environmentalists": [
        "Environmentalists disagree among themselves about nuclear power, which makes for interesting debates.",
        "I think some climate protests go too far, but the underlying worry about pollution is fair.",
    ],
    "tech_workers": [
        "Tech workers have faced a lot of layoffs recently, and many are retraining or changing fields.",
        "The tech workers I know mostly just want stable projects and sensible hours.",
    ],
    "students": [
        "Students are juggling part-time jobs and studies more than previous generations did.",
        "Students who protest peacefully are using a right that earlier generations fought hard for.",
    ],
    "critics": [
        "Critics can be harsh, but a good review explains why a film worked or didn't.",
        "Critics of the new policy raised some fair points about what it will cost.",
    ],
    "skeptics": [
        "Skepticism is healthy in science as long as people change their minds when the evidence is strong.",
    ],
    "atheists": [
        "Atheists make up a growing share of young adults in several European countries.",
    ],
    "religious": [
        "Religious communities often run food banks, shelters and youth programmes.",
    ],
    "older_people": [
        "Older colleagues have taught me a lot about handling difficult clients.",
        "Older people are often the most reliable voters in local elections.",
    ],
    "gamers": [
        "Gaming is now one of the most popular hobbies across every age group.",
        "Gamers raised millions for children's hospitals through charity livestreams last year.",
    ],
}

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
    # appended after the seeded rows above so earlier rows keep their random draws
    for g, lst in STEREOTYPES_IMPLICIT.items():
        for t in lst:
            rows.append((t, TOX, "hate", "t-stereo2-%s" % g))
    for g, lst in GROUP_OK_MORE.items():
        for t in lst:
            rows.append((t, OK, None, "t-groupok2-%s" % g))
    for g, lst in BRIDGE_TOXIC.items():
        for t in lst:
            rows.append((t, TOX, "harassment", "t-bridge-%s" % g))
    for g, lst in BRIDGE_OK.items():
        for t in lst:
            rows.append((t, OK, None, "t-bridge-%s" % g))
    # casing / punctuation variants of a subset so the classifier is not case-bound
    variants = []
    for t, lab, cat, grp in rows:
        if rng.random() < 0.12:
            v = t[:1].upper() + t[1:]
            v = v + ("." if not v.endswith(("?", ".", "!")) else "")
            variants.append((v, lab, cat, grp))
    rows.extend(variants)
    return rows
