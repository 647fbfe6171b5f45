"""Word lists behind the detector's signals, in English, Spanish, French and German.

Every entry is accent-folded and lowercase (``füge`` is written ``fuge``), because
text is folded the same way before it is matched. Phrases are matched as whole
word sequences.
"""

from __future__ import annotations

# Verbs that order work on code or systems (imperatives and infinitives).
WORK_VERBS = frozenset(
    """
    implement add refactor fix build create migrate write update remove delete rename audit
    deploy ship integrate optimize optimise setup configure upgrade downgrade bump port
    rewrite debug split extract move replace design scaffold make clean cleanup sort wire
    hook document test cover investigate find review change modify introduce enable
    disable support handle generate install restructure reorganize reorganise consolidate
    deduplicate dedupe drop patch resolve harden secure speed improve adjust tweak
    containerize dockerize automate parallelize instrument localize paginate cache expose
    rollback revert merge rebase release publish bootstrap initialize init provision lint
    reformat annotate backfill seed shard benchmark profile rework redo finish complete
    implementing adding fixing refactoring migrating building ship-it sunset deprecate
    decouple modularize inline bundle wrap localise set-up hookup hook-up hardcode
    unhardcode persist monitor alert scale
    implementa implementar implemente anade anadir agrega agregar agregue refactoriza
    refactorizar refactorice arregla arreglar arreglalo arregle corrige corregir corrija
    crea crear migra migrar migre escribe escribir escriba actualiza actualizar actualice
    elimina eliminar elimine borra borrar renombra renombrar audita auditar despliega
    desplegar despliegue integra integrar optimiza optimizar configura configurar construye
    construir mueve mover reemplaza reemplazar cambia cambiar modifica modificar haz hacer
    monta montar disena disenar documenta documentar testea revisa revisar investiga
    soluciona solucionar averigua averiguar mejora mejorar limpia limpiar automatiza dockeriza
    divide extrae genera generar sube subir pasa pasar migralo implementalo
    implemente implementer implementez ajoute ajouter ajoutez refactorise refactoriser
    refactorisez refactore refactorer corrige corriger corrigez repare reparer reparez cree
    creer creez migre migrer migrez ecris ecrire ecrivez supprime supprimer supprimez
    renomme renommer audite auditer deploie deployer deployez integre integrer optimise
    optimiser configure configurer construis construire deplace deplacer remplace remplacer
    change changer modifie modifier fais faire concois documente documenter teste tester
    verifie verifier ameliore ameliorer nettoie nettoyer automatise decoupe extrais genere
    generer installe installer mets mettre passe passer rajoute rajouter developpe
    developper code coder livre livrer
    implementiere implementieren fuge hinzufugen baue bau bauen refaktoriere refaktorisiere
    refaktorieren behebe beheben fixe fixen erstelle erstellen migriere migrieren schreibe
    schreib schreiben aktualisiere aktualisieren entferne entfernen losche loschen benenne
    umbenennen prufe prufen deploye deployen integriere integrieren optimiere optimieren
    konfiguriere konfigurieren richte einrichten verschiebe verschieben ersetze ersetzen
    andere andern mach mache machen dokumentiere dokumentieren teste testen uberarbeite
    uberarbeiten repariere reparieren korrigiere korrigieren verbessere verbessern raume
    aufraumen automatisiere teile extrahiere generiere installiere stelle umstellen
    portiere baue implementier programmiere programmieren entwickle entwickeln liefere
    ersetz ander losch pruf verschieb entfern erstell aktualisier refaktorier migrier
    dokumentier optimier konfigurier reparier korrigier integrier bau
    """.split()
)

# Verbs that ask for an explanation or a small transformation, answered in one reply.
EXPLAIN_VERBS = frozenset(
    """
    explain describe define summarize summarise compare tell clarify outline list name
    calculate compute convert translate solve estimate recommend suggest paraphrase
    proofread rephrase reword interpret decode elaborate contrast evaluate rate
    explica explicame explicar describe describir define definir resume resumir compara
    comparar dime dame calcula calcular convierte convertir traduce traducir sugiere
    recomienda aclara
    explique expliquer expliquez decris decrire definis definir resume resumer compare
    comparer dis dire donne donner calcule calculer convertis convertir traduis traduire
    suggere recommande clarifie montre montrer
    decir explicarme mostrar muestra
    sagen erklaren beschreiben zeigen zeig ubersetz
    erklare erklaren erklar beschreibe beschreiben definiere fasse zusammenfassen
    vergleiche vergleichen sag sage nenne gib berechne berechnen konvertiere rechne
    ubersetze ubersetzen empfiehl schlage
    """.split()
)

# Words that open a question.
QUESTION_WORDS = frozenset(
    """
    what whats why how hows when where wheres who whom whose which is are was were does do
    did can could should would will shall may might isnt arent doesnt dont didnt cant
    wont shouldnt wouldnt couldnt any anyone anybody what's how's where's who's why's
    isn't aren't doesn't don't didn't can't won't shouldn't wouldn't couldn't
    que quien quienes como cual cuales cuando donde cuanto cuanta cuantos cuantas es son
    hay existe existen sabes puedo debo conviene vale
    qu qu'est quest c'est quoi pourquoi comment quel quelle quels quelles quand ou qui combien est
    faut dois peut peut-on
    was wie warum wieso weshalb wann wo woher wohin wer wen wem welche welcher welches
    welchen wieviel ist sind gibt soll sollte hat hast bedeutet heisst lohnt
    """.split()
)

# Openings that wrap an order in a question or a courtesy ("could you ...").
POLITE_OPENERS = (
    "can you", "could you", "would you", "will you", "can u", "could u", "would u",
    "would you mind", "would it be possible to", "is it possible to", "is it possible for you to",
    "i was wondering if you could", "do you mind", "mind", "please", "pls", "plz", "kindly",
    "can we", "could we", "let's", "lets", "let us", "i need you to", "i'd like you to",
    "i would like you to", "i want you to", "we need to", "i need to", "need you to",
    "go ahead and", "help me", "we should", "you should", "time to", "we have to", "we must",
    "i'd like to", "i want to", "we want to", "it would be great if you could",
    "could someone", "can someone", "why don't you", "why not", "would you be able to",
    "are you able to", "could you be able to", "any chance you could", "feel free to",
    "puedes", "podrias", "podria", "podrian", "pueden", "me ayudas a", "ayudame a",
    "necesito que", "quiero que", "por favor", "porfa", "te importaria", "seria posible",
    "hay que", "tenemos que", "necesitamos", "me puedes", "me podrias",
    "peux tu", "pourrais tu", "pourriez vous",
    "pouvez vous", "tu peux", "tu pourrais", "vous pouvez", "merci de",
    "s'il te plait", "s'il vous plait", "svp", "stp", "il faudrait", "il faut",
    "j'aimerais que tu", "je voudrais que tu", "aide moi a", "on doit", "il faut qu'on",
    "est ce que tu pourrais", "est ce que tu peux", "est ce que vous pourriez",
    "est ce que vous pouvez", "tu pourrais pas", "ce serait bien de",
    "kannst du", "konntest du", "konnten sie", "konnen sie", "wurdest du", "wurden sie",
    "bitte", "mach mal", "ich brauche", "wir mussen", "lass uns", "hilf mir", "kannst du mal",
    "konntest du mal", "wir sollten", "du solltest",
)  # fmt: skip

# Things one reply can produce: "a regex", "a haiku", "a SQL query".
ONE_SHOT_OBJECTS = frozenset(
    """
    regex regexp regular expression haiku poem limerick joke liner oneliner snippet
    description paragraph message post caption blurb announcement gitignore dockerfile
    makefile class script program type interface schema component hook view
    cron crontab query function lambda command alias email e-mail tweet slogan tagline
    commit message docstring example analogy metaphor riddle sonnet story song lyrics
    pun toast recipe acronym mnemonic formula equation synonym synonyms antonym name names
    title subject line pseudocode expression script bio summary definition cheatsheet
    poema chiste funcion consulta correo ejemplo expresion nombre resumen receta cancion
    poeme blague fonction requete courriel mail exemple expression nom recette chanson
    gedicht witz funktion abfrage befehl beispiel ausdruck name zusammenfassung rezept lied
    """.split()
)

# Determiners that point at something that already exists (the user's code).
OWNED = frozenset(
    """
    our my the this these that those its their your
    nuestro nuestra nuestros nuestras mi mis el la los las este esta estos estas ese esa
    notre nos mon ma mes le la les ce cet cette ces leur leurs
    unser unsere unseren unserem unserer mein meine meinen meinem der die das den dem des
    diese dieses diesen diesem
    """.split()
)

# Nouns for parts of a software system.
SYSTEM_NOUNS = frozenset(
    """
    codebase code repo repository project app application service services microservice
    microservices module modules package packages endpoint endpoints api apis route routes
    tests test suite pipeline pipelines ci build schema database db frontend backend
    feature features page pages component components dashboard form forms cli library lib
    sdk monorepo config configuration docs readme dockerfile chart cluster deployment
    workflow workflows job jobs controller controllers models migration migrations handler
    handlers middleware server client bot plugin plugins site website integration auth
    login signup checkout cart admin panel screen screens view views layer infra
    infrastructure stack system systems flow onboarding parser scheduler worker workers
    queue cache tables table branch pr mr ticket issue bug crash build release
    codigo repositorio proyecto aplicacion servicio servicios modulo modulos pruebas
    esquema base datos pagina componente componentes formulario funcionalidad sistema
    depot projet appli composant composants formulaire fonctionnalite systeme
    projekt anwendung dienst dienste modul datenbank seite komponente komponenten formular
    funktion system
    """.split()
)

# Words that widen the scope to many parts.
SCOPE_WORDS = frozenset(
    """
    all every entire whole across throughout everywhere everything each e2e fully completely
    todos todas todo toda cada entero entera completo completa
    tout tous toutes chaque entier entiere complet complete partout
    alle alles jede jeden jedes gesamte gesamten ganze ganzen uberall komplett vollstandig
    """.split()
)

# Words that chain steps together.
STEP_WORDS = frozenset(
    """
    then afterwards finally also additionally next first second third lastly plus
    luego despues tambien finalmente primero segundo ademas
    puis ensuite apres aussi enfin finalement premierement egalement
    dann danach anschliessend ausserdem auch zuletzt zuerst schliesslich zusatzlich
    """.split()
)

# Words that make up small talk: "ok thanks", "nvm, figured it out", "cool, got it".
CHITCHAT = frozenset(
    """
    ok okay cool great nice perfect awesome nvm nevermind never mind got it figured out
    thanks thank you thx ty cheers bye good morning night evening hi hello hey there all
    again so much lot appreciated works worked it that's thats fine sure yes no nope yep
    vale perfecto genial gracias hola listo bien muchas buenas
    d'accord parfait super merci beaucoup salut bonjour oui non nickel ca marche
    okay super danke schon hallo alles klar passt gut prima ja nein
    """.split()
)

# Questions about the assistant itself.
HELP_PHRASES = (
    "what can you do", "who are you", "are you there", "how do i use you", "what are you",
    "que puedes hacer", "quien eres", "estas ahi", "que sais tu faire", "qui es tu", "tu es la",
    "was kannst du", "wer bist du", "bist du da",
)  # fmt: skip

# Verbs that change something that already exists: "add a hook" is work, "write a hook" may not be.
MODIFY_VERBS = frozenset(
    """
    add implement fix refactor migrate update remove delete rename integrate replace move
    upgrade change modify wire hook patch extend split extract rework
    anade agrega implementa arregla corrige refactoriza migra actualiza elimina integra
    reemplaza cambia modifica ajoute implemente corrige refactorise migre supprime integre
    remplace change modifie fuge implementiere behebe refaktoriere migriere aktualisiere
    entferne integriere ersetze andere
    """.split()
)

GREETINGS = frozenset(
    """
    hi hello hey yo hiya howdy thanks thank thx ty cheers bye goodbye morning evening
    hola gracias buenas buenos adios
    bonjour salut merci coucou bonsoir
    hallo danke moin servus tschuss gruss morgen
    """.split()
)

HELP_WORDS = frozenset(
    """
    help status ping version usage commands capabilities ayuda estado aide statut hilfe
    """.split()
)

# Extensions that make a token look like a file name.
FILE_EXTENSIONS = frozenset(
    """
    py js ts tsx jsx go rs java kt kts rb php cs cpp cc c h hpp yml yaml toml json md sql
    tf sh bash zsh vue svelte swift scala ex exs erl clj dart lua pl r ipynb cfg ini env
    gradle xml html css scss proto graphql lock txt dockerfile makefile mk gitignore
    dockerignore editorconfig npmrc
    """.split()
)
