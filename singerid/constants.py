"""Every number singerid takes from the KNN-Net paper or its baselines, with units and source.

Paper: Zhang, Qian, Yu, Sun, Li, "Singer identification using deep timbre feature learning
with KNN-Net" (2021). Where the paper is silent we take the value of the CRNN baseline it
compares with (Nasrullah & Zhao, "Music artist classification with convolutional recurrent
neural networks", IJCNN 2019), and say so. Values marked "ours" are our own choices.
"""

# --- Audio front end (CRNN baseline, Nasrullah 2019; the paper's comparison model) ---
SAMPLE_RATE_HZ = 16_000  # artist20 is distributed at 16 kHz mono; baseline works at 16 kHz
N_FFT_SAMPLES = 2048  # CRNN baseline STFT size (128 ms at 16 kHz)
HOP_SAMPLES = 512  # CRNN baseline hop: 16000 / 512 = 31.25 frames/s
N_MELS = 128  # CRNN baseline mel bands
FMIN_HZ = 0.0  # librosa default, as in the baseline
AMIN_POWER = 1e-10  # floor before log, librosa.power_to_db default
BLOCK_FRAMES = 32  # paper §3.3: "frame-block size (takes up 1 second that consists of 32 frames)"
BLOCK_HOP_FRAMES = 32  # ours: non-overlapping blocks, as the paper votes "from all blocks"
STREAM_CHUNK_SECONDS = 60.0  # ours: decode granularity that bounds memory for long files

# --- Decision (paper §2.1, §3.3) ---
K_NEIGHBOURS = 11  # paper §3.3: "the value of K ... is set as 11"
SEARCH_AGREEMENT = 0.99  # ours (issue 10): approximate indexes are tuned to decide >= 99 % of songs as exact search

# --- Networks (CRNN baseline architecture; the paper reuses it and adds attention) ---
CONV_FILTERS = (64, 128, 128, 128)  # CRNN baseline
POOL_SIZES = ((2, 2), (4, 2), (4, 2), (4, 2))  # CRNN baseline (frequency, time)
CONV_DROPOUT = 0.1  # CRNN baseline
GRU_UNITS = 32  # CRNN baseline: two stacked GRUs of 32 units
GRU_LAYERS = 2  # CRNN baseline
GRU_DROPOUT = 0.3  # CRNN baseline, after the recurrent block

# --- Training (CRNN baseline; the KNN-Net paper gives none) ---
LEARNING_RATE = 1e-3  # CRNN baseline (Adam)
BATCH_SIZE = 16  # CRNN baseline
MAX_EPOCHS = 200  # CRNN baseline
PATIENCE_EPOCHS = 10  # CRNN baseline early stopping
BASELINE_SEEDS = (0, 21, 42)  # CRNN baseline repeats its album split with these seeds

# --- Splits (paper §3.1 and datasets notes) ---
ARTIST20_ALBUM_SPLIT = (4, 1, 1)  # paper §3.1: per artist 4 albums train, 1 val, 1 test
SINGER_SONG_SPLIT = (8, 1, 1)  # paper §3.1: singer32/60 train:val:test = 8:1:1 per singer
SONG_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # literature's "song split" (explicit option only)
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg")  # what libsndfile decodes
# AAC / ALAC in MP4 containers: libsndfile cannot decode them and no pinned pure-pip decoder exists
# (PyAV bundles FFmpeg); such files are reported with advice to convert, never silently skipped.
UNSUPPORTED_AUDIO_EXTENSIONS = (".m4a", ".aac", ".mp4", ".alac", ".wma")
LISTED_AUDIO_EXTENSIONS = AUDIO_EXTENSIONS + UNSUPPORTED_AUDIO_EXTENSIONS  # what folder walks pick up

# --- Limits on the work one input may cause (ours; each can be raised: singerid.audio.AudioLimits) ---
MAX_AUDIO_SECONDS = 2 * 3600.0  # ours: longer than any album side or concert set we know of (2 h)
MIN_SAMPLE_RATE_HZ = 8_000  # ours: telephone band; below it a voice is unintelligible (Nyquist 4 kHz)
MAX_SAMPLE_RATE_HZ = 384_000  # ours: the highest rate of studio / DXD formats
MAX_CHANNELS = 16  # ours: 3rd-order ambisonics (16) and 7.1.4 (12) fit; more is not a song
DECODE_BUDGET_BYTES = 32 * 2**20  # ours: raw samples decoded per read, whatever rate x channels (32 MiB)
MAX_ABS_SAMPLE = 1e3  # ours: +60 dBFS; float files go a little past 1.0, never this far (1e30 is garbage)
